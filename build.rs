//! Compiles `proto/haloy/v1` into Rust with a vendored protoc, so a fresh machine needs
//! no system protoc, and writes the file descriptor set that server reflection serves.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; nothing else reads the environment now.
    unsafe { env::set_var("PROTOC", protoc) };
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let protos = [
        "proto/haloy/v1/haloy.proto",
        "proto/haloy/v1/spec.proto",
        "proto/haloy/v1/session.proto",
    ];
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("haloy_v1_descriptor.bin"))
        .compile_protos(&protos, &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
