//! Haloy's wire API: the `haloy.v1` gRPC contract, the domain types it carries, the
//! rules a spec must obey, and the one place that converts between them.

pub mod convert;
pub mod fingerprint;
pub mod ids;
pub mod rollout;
pub mod rules;
pub mod spec;
pub mod status;

/// Generated code for the `haloy.v1` protobuf package.
#[allow(clippy::all, missing_docs)]
pub mod v1 {
    tonic::include_proto!("haloy.v1");

    /// The encoded file descriptor set, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("haloy_v1_descriptor");
}

pub use convert::ConversionError;
