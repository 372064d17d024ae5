//! Recording fakes of the runtime and proxy seams for the engine's state-machine
//! tests. The fake containers serve real HTTP on loopback so health checks run for real;
//! any method can be made to fail.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::{self, BoxStream, StreamExt};
use haloy_api::spec::RegistryAuth;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::proxy::{AppRoute, Backend, Proxy, ProxyError, ServerStatus};
use crate::runtime::{
    ArchiveStream, ContainerInfo, ContainerRuntime, ContainerSpec, ContainerState, LogLine,
    RuntimeError,
};

/// Engine settings for tests: short health, drain and stop timeouts.
pub fn quick_settings() -> crate::engine::EngineSettings {
    crate::engine::EngineSettings {
        instance: "test".into(),
        health_timeout: Duration::from_secs(3),
        health_interval: Duration::from_millis(50),
        drain_timeout: Duration::from_secs(1),
        stop_grace: Duration::from_secs(1),
    }
}

/// The calls a fake received ("method args"), and the methods told to fail.
#[derive(Default)]
pub struct CallLog {
    calls: Mutex<Vec<String>>,
    /// Method name → error message it fails with.
    failures: Mutex<HashMap<&'static str, String>>,
}

impl CallLog {
    /// Records `call`; the error message if its method was told to fail.
    fn record(&self, call: String) -> Result<(), String> {
        let method = call.split(' ').next().unwrap_or_default().to_string();
        self.calls.lock().unwrap().push(call);
        match self.failures.lock().unwrap().get(method.as_str()) {
            Some(message) => Err(message.clone()),
            None => Ok(()),
        }
    }

    pub fn fail(&self, method: &'static str, message: &str) {
        self.failures
            .lock()
            .unwrap()
            .insert(method, message.to_string());
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

struct FakeContainer {
    info: ContainerInfo,
    server: Option<JoinHandle<()>>,
}

#[derive(Default)]
pub struct FakeRuntime {
    containers: Mutex<Vec<FakeContainer>>,
    pub images: Mutex<HashSet<String>>,
    /// Image ids by reference, for images tagged from another; others are their own id.
    pub image_ids: Mutex<HashMap<String, String>>,
    /// What `layer_chains` answers.
    pub chains: Mutex<Vec<Vec<String>>>,
    pub log: CallLog,
    next_id: Mutex<u32>,
}

/// Serves HTTP on a free loopback port; images named `*unhealthy*` answer 500.
async fn serve(image: &str) -> (u16, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let status = if image.contains("unhealthy") {
        "500 Oops"
    } else {
        "200 OK"
    };
    let answer = format!("HTTP/1.0 {status}\r\nContent-Length: 2\r\n\r\nok");
    let task = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    (port, task)
}

impl FakeRuntime {
    fn record(&self, call: String) -> Result<(), RuntimeError> {
        self.log.record(call).map_err(RuntimeError::Other)
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
    pub async fn adopt(&self, name: &str, labels: BTreeMap<String, String>, running: bool) {
        let (port, task) = serve("ok").await;
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
            },
            server: Some(task),
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
        self.record(format!("ensure_network {name}"))
    }
    async fn image_exists(&self, reference: &str) -> Result<bool, RuntimeError> {
        Ok(self.images.lock().unwrap().contains(reference))
    }
    async fn layer_chains(&self) -> Result<Vec<Vec<String>>, RuntimeError> {
        self.record("layer_chains".into())?;
        Ok(self.chains.lock().unwrap().clone())
    }
    async fn pull_image(
        &self,
        reference: &str,
        _auth: Option<&RegistryAuth>,
    ) -> Result<(), RuntimeError> {
        self.record(format!("pull_image {reference}"))?;
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
        self.record(format!("load_image {reference}"))?;
        self.images.lock().unwrap().insert(reference.clone());
        Ok(vec![reference])
    }
    async fn tag_image(
        &self,
        source: &str,
        repository: &str,
        tag: &str,
    ) -> Result<(), RuntimeError> {
        self.record(format!("tag_image {source} {repository}:{tag}"))?;
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
        self.record(format!("untag_image {reference}"))?;
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
        self.record(format!("run {}", spec.name))?;
        let crashes = spec.image.contains("crash");
        let (port, task) = serve(&spec.image).await;
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
            state: if crashes {
                ContainerState::Exited(1)
            } else {
                ContainerState::Running
            },
            host_port: (!crashes).then_some(port),
        };
        self.containers.lock().unwrap().push(FakeContainer {
            info: info.clone(),
            server: Some(task),
        });
        Ok(info)
    }
    async fn start(&self, id: &str) -> Result<ContainerInfo, RuntimeError> {
        self.record(format!("start {id}"))?;
        let (port, task) = serve("ok").await;
        let mut containers = self.containers.lock().unwrap();
        let c = containers
            .iter_mut()
            .find(|c| c.info.id == id)
            .ok_or_else(|| RuntimeError::NoSuchContainer(id.into()))?;
        c.info.state = ContainerState::Running;
        c.info.host_port = Some(port);
        c.server = Some(task);
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
        self.record(format!("stop {name}"))?;
        let mut containers = self.containers.lock().unwrap();
        if let Some(c) = containers.iter_mut().find(|c| c.info.id == id) {
            c.info.state = ContainerState::Exited(0);
            c.info.host_port = None;
            if let Some(task) = c.server.take() {
                task.abort();
            }
        }
        Ok(())
    }
    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        let name = self.inspect(id).await.map(|c| c.name).unwrap_or_default();
        self.record(format!("remove {name}"))?;
        let mut containers = self.containers.lock().unwrap();
        if let Some(pos) = containers.iter().position(|c| c.info.id == id)
            && let Some(task) = containers.remove(pos).server
        {
            task.abort();
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

#[derive(Default)]
pub struct FakeProxy {
    pub apps: Mutex<BTreeMap<String, Vec<ServerStatus>>>,
    pub log: CallLog,
}

impl FakeProxy {
    fn record(&self, call: String) -> Result<(), ProxyError> {
        self.log.record(call).map_err(ProxyError::Other)
    }

    pub fn server_names(&self, app: &str) -> Vec<String> {
        self.apps
            .lock()
            .unwrap()
            .get(app)
            .map(|s| s.iter().map(|s| s.name.clone()).collect())
            .unwrap_or_default()
    }
}

#[async_trait]
impl Proxy for FakeProxy {
    async fn sync(&self, routes: &[AppRoute]) -> Result<(), ProxyError> {
        self.record("sync".into())?;
        let mut apps = self.apps.lock().unwrap();
        apps.clear();
        for route in routes {
            apps.insert(
                route.app.clone(),
                route
                    .servers
                    .iter()
                    .map(|s| ServerStatus {
                        name: s.name.clone(),
                        addr: s.addr,
                        state: "up".into(),
                        sessions: 0,
                    })
                    .collect(),
            );
        }
        Ok(())
    }
    async fn ensure_app(&self, route: &AppRoute) -> Result<(), ProxyError> {
        self.record(format!("ensure_app {}", route.app))?;
        self.apps
            .lock()
            .unwrap()
            .entry(route.app.clone())
            .or_default();
        Ok(())
    }
    async fn add_server(&self, app: &str, server: &Backend) -> Result<(), ProxyError> {
        self.record(format!("add_server {}", server.name))?;
        let mut apps = self.apps.lock().unwrap();
        apps.entry(app.to_string()).or_default().push(ServerStatus {
            name: server.name.clone(),
            addr: server.addr,
            state: "up".into(),
            sessions: 0,
        });
        Ok(())
    }
    async fn drain_server(&self, app: &str, name: &str) -> Result<(), ProxyError> {
        self.record(format!("drain_server {name}"))?;
        let mut apps = self.apps.lock().unwrap();
        for s in apps
            .entry(app.to_string())
            .or_default()
            .iter_mut()
            .filter(|s| s.name == name)
        {
            s.state = "drain".into();
        }
        Ok(())
    }
    async fn remove_server(&self, app: &str, name: &str) -> Result<(), ProxyError> {
        self.record(format!("remove_server {name}"))?;
        let mut apps = self.apps.lock().unwrap();
        apps.entry(app.to_string())
            .or_default()
            .retain(|s| s.name != name);
        Ok(())
    }
    async fn servers(&self, app: &str) -> Result<Vec<ServerStatus>, ProxyError> {
        Ok(self
            .apps
            .lock()
            .unwrap()
            .get(app)
            .cloned()
            .unwrap_or_default())
    }
    async fn remove_app(&self, app: &str) -> Result<(), ProxyError> {
        self.record(format!("remove_app {app}"))?;
        self.apps.lock().unwrap().remove(app);
        Ok(())
    }
    async fn version(&self) -> Result<String, ProxyError> {
        Ok("fake".into())
    }
}
