//! Running `haloy` and `haloyadm` as processes in a temporary sandbox with a
//! scrubbed environment and its own HOME, shared by the CLI test files of `cli/` and
//! `admin/` (each package builds its own binary).

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Sandbox {
    dir: tempfile::TempDir,
    vars: Vec<(String, String)>,
}

impl Sandbox {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("home")).expect("home");
        std::fs::create_dir_all(dir.path().join("work")).expect("work");
        Self {
            dir,
            vars: Vec::new(),
        }
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.work().join(name), text).expect("write");
    }

    pub fn set(&mut self, name: &str, value: &str) {
        self.vars.push((name.into(), value.into()));
    }

    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        let binary = match program {
            "haloy" => option_env!("CARGO_BIN_EXE_haloy"),
            "haloyadm" => option_env!("CARGO_BIN_EXE_haloyadm"),
            _ => None,
        }
        .unwrap_or_else(|| panic!("{program} is not a binary of the package under test"));
        Command::new(binary)
            .args(args)
            .env_clear()
            .env("HOME", self.home())
            .env("PATH", "/usr/bin:/bin")
            .envs(self.vars.iter().map(|(k, v)| (k, v)))
            .current_dir(self.work())
            .output()
            .expect("run")
    }

    /// Runs and expects success; returns stdout.
    pub fn ok(&self, program: &str, args: &[&str]) -> String {
        let out = self.run(program, args);
        assert!(
            out.status.success(),
            "{program} {args:?} failed:\n{}",
            describe(&out)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    /// Runs and expects failure; returns stderr.
    pub fn fails(&self, program: &str, args: &[&str]) -> String {
        let out = self.run(program, args);
        assert!(
            !out.status.success(),
            "{program} {args:?} should fail:\n{}",
            describe(&out)
        );
        String::from_utf8(out.stderr).expect("utf-8")
    }
}

pub fn describe(out: &Output) -> String {
    format!(
        "status: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}
