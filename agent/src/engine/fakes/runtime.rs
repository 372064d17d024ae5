//! The fake Docker: containers with made-up ports, images by name, a call log.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::{self, BoxStream, StreamExt};
use haloy_api::spec::RegistryAuth;

use super::CallLog;
use crate::engine::{Answer, ProbeError};
use crate::runtime::{
    ArchiveStream, ContainerInfo, ContainerRuntime, ContainerSpec, ContainerState, LogLine,
    RuntimeError,
};

struct FakeContainer {
    info: ContainerInfo,
}

#[derive(Default)]
pub struct FakeRuntime {
    containers: Mutex<Vec<FakeContainer>>,
    /// The last made-up host port handed out.
    last_port: Mutex<u16>,
    pub images: Mutex<HashSet<String>>,
    /// Image ids by reference, for images tagged from another; others are their own id.
    pub image_ids: Mutex<HashMap<String, String>>,
    /// What `layer_chains` answers.
    pub chains: Mutex<Vec<Vec<String>>>,
    pub log: CallLog,
    next_id: Mutex<u32>,
    /// (image part, name suffix): containers of such an image whose name ends so
    /// answer 500, as one bad replica of a rollout would.
    pub sick: Mutex<Vec<(String, String)>>,
}

impl FakeRuntime {
    /// A port no fake container has had yet.
    fn port(&self) -> u16 {
        let mut last = self.last_port.lock().unwrap();
        *last = (*last).max(20000) + 1;
        *last
    }

    /// What the container published on `port` answers to a health check.
    pub fn answer(&self, port: u16) -> Result<Answer, ProbeError> {
        let containers = self.containers.lock().unwrap();
        let container = containers
            .iter()
            .find(|c| c.info.host_port == Some(port) && c.info.state == ContainerState::Running)
            .ok_or_else(|| ProbeError::Connect(std::io::ErrorKind::ConnectionRefused.into()))?;
        let image = container.info.image.clone();
        let name = container.info.name.clone();
        drop(containers);
        let sick =
            self.sick.lock().unwrap().iter().any(|(part, suffix)| {
                image.contains(part.as_str()) && name.ends_with(suffix.as_str())
            });
        Ok(if sick || self.id_of(&image).contains("unhealthy") {
            Answer {
                status: 500,
                first_line: "database unreachable".into(),
            }
        } else {
            Answer {
                status: 200,
                first_line: "ok".into(),
            }
        })
    }

    /// Makes the container called `name` exit as if it crashed (Docker does not
    /// restart it here).
    pub fn kill(&self, name: &str, code: i64, oom: bool) {
        let mut containers = self.containers.lock().unwrap();
        if let Some(c) = containers.iter_mut().find(|c| c.info.name == name) {
            c.info.state = ContainerState::Exited(code);
            c.info.host_port = None;
            c.info.oom_killed = oom;
        }
    }

    /// The state of the container called `name`.
    pub fn state(&self, name: &str) -> Option<ContainerState> {
        let containers = self.containers.lock().unwrap();
        containers
            .iter()
            .find(|c| c.info.name == name)
            .map(|c| c.info.state.clone())
    }

    async fn record(&self, call: String) -> Result<(), RuntimeError> {
        self.log.enter(call).await.map_err(RuntimeError::Other)
    }

    /// The id of an image: the one it was tagged from, or its own name.
    pub fn id_of(&self, reference: &str) -> String {
        self.image_ids
            .lock()
            .unwrap()
            .get(reference)
            .cloned()
            .unwrap_or_else(|| format!("sha256:{reference}"))
    }

    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .containers
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.info.name.clone())
            .collect();
        names.sort();
        names
    }

    /// Adds a container as if another process (or an earlier haloyd) had made it.
    pub fn adopt(&self, name: &str, labels: BTreeMap<String, String>, running: bool) {
        let port = self.port();
        let mut next = self.next_id.lock().unwrap();
        *next += 1;
        self.containers.lock().unwrap().push(FakeContainer {
            info: ContainerInfo {
                id: format!("c{next}"),
                name: name.into(),
                image: "img".into(),
                labels,
                state: if running {
                    ContainerState::Running
                } else {
                    ContainerState::Exited(0)
                },
                host_port: running.then_some(port),
                oom_killed: false,
                restart_count: 0,
                last_exit: None,
                docker_health: None,
            },
        });
    }
}

#[async_trait]
impl ContainerRuntime for FakeRuntime {
    async fn version(&self) -> Result<String, RuntimeError> {
        Ok("fake".into())
    }
    async fn engine_id(&self) -> Result<String, RuntimeError> {
        Ok("fake-engine".into())
    }
    async fn ensure_network(&self, name: &str) -> Result<(), RuntimeError> {
        self.record(format!("ensure_network {name}")).await
    }
    async fn image_exists(&self, reference: &str) -> Result<bool, RuntimeError> {
        Ok(self.images.lock().unwrap().contains(reference))
    }
    async fn layer_chains(&self) -> Result<Vec<Vec<String>>, RuntimeError> {
        self.record("layer_chains".into()).await?;
        Ok(self.chains.lock().unwrap().clone())
    }
    async fn pull_image(
        &self,
        reference: &str,
        _auth: Option<&RegistryAuth>,
    ) -> Result<(), RuntimeError> {
        self.record(format!("pull_image {reference}")).await?;
        self.images.lock().unwrap().insert(reference.to_string());
        Ok(())
    }
    /// "Loads" the image reference the archive consists of; like Docker, loads
    /// nothing when the stream breaks.
    async fn load_image(&self, mut archive: ArchiveStream) -> Result<Vec<String>, RuntimeError> {
        use futures_util::StreamExt;
        let mut data = Vec::new();
        while let Some(chunk) = archive.next().await {
            let chunk = chunk.map_err(|e| RuntimeError::Other(format!("unexpected EOF: {e}")))?;
            data.extend_from_slice(&chunk);
        }
        let reference = String::from_utf8_lossy(&data).trim().to_string();
        self.record(format!("load_image {reference}")).await?;
        self.images.lock().unwrap().insert(reference.clone());
        Ok(vec![reference])
    }
    async fn tag_image(
        &self,
        source: &str,
        repository: &str,
        tag: &str,
    ) -> Result<(), RuntimeError> {
        self.record(format!("tag_image {source} {repository}:{tag}"))
            .await?;
        let target = format!("{repository}:{tag}");
        let id = self.id_of(source);
        self.image_ids.lock().unwrap().insert(target.clone(), id);
        self.images.lock().unwrap().insert(target);
        Ok(())
    }
    async fn image_id(&self, reference: &str) -> Result<Option<String>, RuntimeError> {
        if !self.images.lock().unwrap().contains(reference) {
            return Ok(None);
        }
        Ok(Some(self.id_of(reference)))
    }
    async fn untag_image(&self, reference: &str) -> Result<(), RuntimeError> {
        self.record(format!("untag_image {reference}")).await?;
        self.images.lock().unwrap().remove(reference);
        self.image_ids.lock().unwrap().remove(reference);
        Ok(())
    }
    async fn images_in_use(&self) -> Result<Vec<String>, RuntimeError> {
        let images: Vec<String> = self
            .containers
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.info.image.clone())
            .collect();
        Ok(images.iter().map(|i| self.id_of(i)).collect())
    }
    async fn run(&self, spec: &ContainerSpec) -> Result<ContainerInfo, RuntimeError> {
        self.record(format!("run {}", spec.name)).await?;
        if self
            .containers
            .lock()
            .unwrap()
            .iter()
            .any(|c| c.info.name == spec.name)
        {
            return Err(RuntimeError::Other(format!(
                "Conflict. The container name \"/{}\" is already in use",
                spec.name
            )));
        }
        let image_id = self.id_of(&spec.image);
        let oom = image_id.contains("oom");
        let crashes = image_id.contains("crash") || oom;
        let port = self.port();
        let id = {
            let mut next = self.next_id.lock().unwrap();
            *next += 1;
            format!("c{next}")
        };
        let info = ContainerInfo {
            id,
            name: spec.name.clone(),
            image: spec.image.clone(),
            labels: spec.labels.clone(),
            state: match (oom, crashes) {
                (true, _) => ContainerState::Exited(137),
                (false, true) => ContainerState::Exited(1),
                (false, false) => ContainerState::Running,
            },
            host_port: (!crashes).then_some(port),
            oom_killed: oom,
            restart_count: 0,
            last_exit: None,
            docker_health: None,
        };
        self.containers
            .lock()
            .unwrap()
            .push(FakeContainer { info: info.clone() });
        Ok(info)
    }
    async fn start(&self, id: &str) -> Result<ContainerInfo, RuntimeError> {
        let name = self.inspect(id).await.map(|c| c.name).unwrap_or_default();
        self.record(format!("start {name}")).await?;
        let port = self.port();
        let mut containers = self.containers.lock().unwrap();
        let c = containers
            .iter_mut()
            .find(|c| c.info.id == id)
            .ok_or_else(|| RuntimeError::NoSuchContainer(id.into()))?;
        c.info.state = ContainerState::Running;
        c.info.oom_killed = false;
        c.info.host_port = Some(port);
        Ok(c.info.clone())
    }
    async fn inspect(&self, id: &str) -> Result<ContainerInfo, RuntimeError> {
        let containers = self.containers.lock().unwrap();
        containers
            .iter()
            .find(|c| c.info.id == id || c.info.name == id)
            .map(|c| c.info.clone())
            .ok_or_else(|| RuntimeError::NoSuchContainer(id.into()))
    }
    async fn list(&self, labels: &[(&str, &str)]) -> Result<Vec<ContainerInfo>, RuntimeError> {
        let containers = self.containers.lock().unwrap();
        Ok(containers
            .iter()
            .filter(|c| {
                labels
                    .iter()
                    .all(|(k, v)| c.info.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|c| c.info.clone())
            .collect())
    }
    async fn stop(&self, id: &str, _grace: Duration) -> Result<(), RuntimeError> {
        let name = self.inspect(id).await.map(|c| c.name).unwrap_or_default();
        self.record(format!("stop {name}")).await?;
        let mut containers = self.containers.lock().unwrap();
        if let Some(c) = containers.iter_mut().find(|c| c.info.id == id) {
            c.info.state = ContainerState::Exited(0);
            c.info.host_port = None;
        }
        Ok(())
    }
    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        let name = self.inspect(id).await.map(|c| c.name).unwrap_or_default();
        self.record(format!("remove {name}")).await?;
        let mut containers = self.containers.lock().unwrap();
        containers.retain(|c| c.info.id != id);
        Ok(())
    }
    async fn rename(&self, id: &str, name: &str) -> Result<(), RuntimeError> {
        let old = self.inspect(id).await?.name;
        self.record(format!("rename {old} {name}")).await?;
        let mut containers = self.containers.lock().unwrap();
        if containers.iter().any(|c| c.info.name == name) {
            return Err(RuntimeError::Other(format!("the name {name} is in use")));
        }
        if let Some(c) = containers.iter_mut().find(|c| c.info.id == id) {
            c.info.name = name.to_string();
        }
        Ok(())
    }
    async fn logs(
        &self,
        id: &str,
        _tail: usize,
        _follow: bool,
    ) -> Result<BoxStream<'static, Result<LogLine, RuntimeError>>, RuntimeError> {
        let name = self.inspect(id).await?.name;
        let line = LogLine {
            stderr: true,
            text: format!("boom from {name}"),
            timestamp: None,
        };
        Ok(stream::iter(vec![Ok(line)]).boxed())
    }
}
