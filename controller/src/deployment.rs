//! What a deploy or rollback works with and says: where its image comes from
//! ([`ImageChoice`]), its progress as it goes ([`Progress`]) and how it ended
//! ([`DeployReport`]).

use std::path::PathBuf;

use haloy_api::status::DeploymentStatus;

/// Where the image of a deploy comes from.
#[derive(Debug, Clone)]
pub enum ImageChoice {
    /// The server pulls `spec.image` from its registry.
    Pull,
    /// The image is already on the server.
    Existing,
    /// Upload this `docker save` archive of one image; only the layers the server
    /// lacks travel.
    Upload(PathBuf),
    /// Export this image (reference or id) from the workstation's Docker and upload
    /// the layers the server lacks.
    UploadFromDocker(String),
}

/// Progress of a deploy, as the CLI shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Accepted {
        deployment_id: String,
    },
    Phase {
        name: String,
        message: String,
    },
    Log {
        replica: String,
        text: String,
    },
    /// haloyd's own word about the deploy.
    Agent {
        text: String,
    },
    /// The server's answer to an upload: it lacks `layers` of the image's `of`
    /// layers, and `bytes` will travel (0 when it has the image).
    UploadPlanned {
        layers: usize,
        of: usize,
        bytes: u64,
    },
    /// After each chunk of an upload.
    Uploading {
        sent: u64,
        total: u64,
    },
    /// The upload is complete.
    Uploaded {
        bytes: u64,
    },
}

/// How a deploy ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployReport {
    pub deployment_id: String,
    pub succeeded: bool,
    pub status: DeploymentStatus,
    pub reason: String,
    /// Bytes of image uploaded.
    pub uploaded_bytes: u64,
}
