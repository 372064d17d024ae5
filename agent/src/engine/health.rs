//! The health check a new container must pass before it gets traffic, behind the
//! [`HealthProbe`] seam (the engine's tests answer it without sockets), the
//! explanation of a failure ([`Unhealthy`]), and the waits built on it: a container
//! healthy, HAProxy routing the new servers.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use haloy_api::spec::{AppSpec, HealthCheck};
use tokio::time::Instant;

use super::Engine;
use super::events::{Abort, Cancel, Event, Events, check_cancel};
use crate::metrics::CheckedDuring;
use crate::runtime::{ContainerInfo, ContainerState, labels};

/// An HTTP answer to a health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// The body's first non-empty line, shortened.
    pub first_line: String,
}

/// Why a health check got no HTTP answer (or no connection).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("connect: {0}")]
    Connect(#[source] std::io::Error),
    #[error("HTTP handshake: {0}")]
    Handshake(#[source] hyper::Error),
    #[error("bad request: {0}")]
    Request(#[source] hyper::http::Error),
    #[error("the connection closed without an answer")]
    Closed(#[source] hyper::Error),
    #[error("the answer is not HTTP")]
    NotHttp(#[source] hyper::Error),
    #[error("request: {0}")]
    Exchange(#[source] hyper::Error),
    #[error("no answer within {} ms", .0.as_millis())]
    NoAnswer(Duration),
    #[error("no connection within {} ms", .0.as_millis())]
    NoConnection(Duration),
    #[error("the connection was closed at once: nothing listens on the port in the container yet")]
    ClosedAtOnce,
}

/// Asks an app whether it is healthy.
#[async_trait]
pub trait HealthProbe: Send + Sync + 'static {
    /// One `GET path` to `127.0.0.1:port` with `Host: host`; `Ok` for any HTTP
    /// answer, `Err(what went wrong)` otherwise.
    async fn probe(
        &self,
        port: u16,
        host: &str,
        path: &str,
        timeout: Duration,
    ) -> Result<Answer, ProbeError>;
    /// Whether something accepts TCP connections on `127.0.0.1:port` and keeps
    /// them open (not only Docker's proxy in front of the container).
    async fn connect(&self, port: u16, timeout: Duration) -> Result<(), ProbeError>;
}

/// 2xx and 3xx count as healthy unless the app expects one status.
pub fn is_healthy(status: u16) -> bool {
    HealthCheck::default().accepts(status)
}

/// What a replica is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Check {
    /// `GET path` with `Host: host`; `None` for a TCP connect (accessories without
    /// domains, which need not speak HTTP).
    pub http: Option<(String, String)>,
    pub rules: HealthCheck,
}

impl Check {
    /// The app's health check path, asked for its first canonical domain (apps that
    /// route by Host answer only that), `localhost` without domains.
    pub fn of(spec: &AppSpec) -> Self {
        let http = (spec.preset.is_none() || !spec.domains.is_empty()).then(|| {
            let host = spec
                .domains
                .first()
                .map_or_else(|| "localhost".to_string(), |d| d.canonical.clone());
            (spec.health_check_path.clone(), host)
        });
        Self {
            http,
            rules: spec.health_check.clone(),
        }
    }

    /// The check of a deployment on record (the watchdog's and recovery's): its
    /// path and first domain, or a TCP connect for an accessory without domains.
    pub fn stored(spec: &crate::store::StoredSpec) -> Self {
        let http = (spec.preset.is_none() || !spec.domains.is_empty()).then(|| {
            let host = spec
                .domains
                .first()
                .map_or_else(|| "localhost".to_string(), |d| d.0.clone());
            (spec.health_check_path.clone(), host)
        });
        Self {
            http,
            rules: HealthCheck {
                expected_status: spec.expected_status,
                ..HealthCheck::default()
            },
        }
    }

    /// "GET /health" or "a TCP connection".
    pub fn describe(&self) -> String {
        match &self.http {
            Some((path, _)) => format!("GET {path}"),
            None => "a TCP connection".into(),
        }
    }
}

/// How a container that stopped running ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    pub code: i64,
    pub oom_killed: bool,
}

/// Why a replica did not become (or stay) healthy, in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unhealthy {
    pub replica: String,
    /// Why haloyd stopped waiting: "not healthy within 60 s", "5 failed checks
    /// in a row", "the container exited with code 137".
    pub gave_up: String,
    /// The last probe: an HTTP status with the body's first line, or the error.
    pub last: String,
    pub tried_for: Duration,
    pub exit: Option<Exit>,
    /// The image's own HEALTHCHECK status when it is not "healthy".
    pub docker_health: Option<String>,
    /// The container's last log lines, oldest first.
    pub logs: Vec<String>,
}

/// How many log lines an explanation carries.
const EXPLAIN_LOG_LINES: usize = 10;

impl fmt::Display for Unhealthy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "replica {} failed its health check: {}",
            self.replica, self.gave_up
        )?;
        if let Some(exit) = &self.exit
            && exit.oom_killed
        {
            write!(
                f,
                " (killed: out of memory; raise resources.memory or lower the app's use)"
            )?;
        }
        write!(
            f,
            " (last: {}); tried for {:.1} s",
            self.last,
            self.tried_for.as_secs_f64()
        )?;
        if let Some(health) = &self.docker_health {
            write!(f, "; the image's HEALTHCHECK reports {health}")?;
        }
        if !self.logs.is_empty() {
            write!(f, "\nlast log lines:")?;
            for line in &self.logs {
                write!(f, "\n  {line}")?;
            }
        }
        Ok(())
    }
}

/// How long HAProxy may take to report new servers up.
const ROUTED_TIMEOUT: Duration = Duration::from_secs(15);

/// The outcome of asking one replica once.
pub(super) enum Probed {
    Healthy(ContainerInfo),
    /// Not (yet) healthy: why, and the container as inspected.
    Not(String, ContainerInfo),
    Exited(Exit, ContainerInfo),
}

impl Engine {
    /// Inspects `container` and asks it once.
    pub(super) async fn probe_once(
        &self,
        container: &ContainerInfo,
        check: &Check,
        timeout: Duration,
    ) -> Result<Probed, Abort> {
        let info = self.runtime.inspect(&container.id).await?;
        let port = match (&info.state, info.host_port) {
            (ContainerState::Exited(code), _) => {
                let exit = Exit {
                    code: *code,
                    oom_killed: info.oom_killed,
                };
                return Ok(Probed::Exited(exit, info));
            }
            // Docker restarts a container that exits (its restart policy): a new
            // replica that did is as failed as one that stayed down.
            (ContainerState::Restarting, _) if info.last_exit.is_some() => {
                let exit = Exit {
                    code: info.last_exit.unwrap_or_default(),
                    oom_killed: info.oom_killed,
                };
                return Ok(Probed::Exited(exit, info));
            }
            (_, _) if info.restart_count > container.restart_count => {
                let why = format!(
                    "Docker restarted the container {} time(s) after it exited",
                    info.restart_count - container.restart_count
                );
                return Ok(Probed::Not(why, info));
            }
            (ContainerState::Running, Some(port)) => port,
            (state, _) => {
                let why = format!("the container is {}", state.as_str());
                return Ok(Probed::Not(why, info));
            }
        };
        let ours = match &check.http {
            Some((path, host)) => match self.probe.probe(port, host, path, timeout).await {
                Ok(answer) if check.rules.accepts(answer.status) => Ok(()),
                Ok(answer) => {
                    let mut why = format!("GET {path} answered {}", answer.status);
                    if !answer.first_line.is_empty() {
                        why.push_str(&format!(" {:?}", answer.first_line));
                    }
                    if let Some(expected) = check.rules.expected_status {
                        why.push_str(&format!(" (expected {expected})"));
                    }
                    Err(why)
                }
                Err(e) => Err(format!("GET {path}: {e}")),
            },
            None => self
                .probe
                .connect(port, timeout)
                .await
                .map_err(|e| e.to_string()),
        };
        // An image's own HEALTHCHECK must agree: both have to say healthy.
        let docker = match info.docker_health.as_deref() {
            None | Some("healthy") => Ok(()),
            Some(other) => Err(format!("the image's HEALTHCHECK reports {other}")),
        };
        Ok(match (ours, docker) {
            (Ok(()), Ok(())) => Probed::Healthy(info),
            (Err(why), _) | (Ok(()), Err(why)) => Probed::Not(why, info),
        })
    }

    /// Waits until `container` answers its health check, and then stays healthy for
    /// `min_ready`; fails at once when it exits, after `retries` failures past the
    /// start period, or at the deadline. A failure streams the container's last log
    /// lines and explains itself in the reason, and is counted in the metrics as
    /// happening `during` (`None`: not counted, e.g. recovery after a restart).
    pub(super) async fn wait_healthy(
        &self,
        container: &ContainerInfo,
        check: &Check,
        events: &Events,
        cancel: &mut Cancel,
        during: Option<CheckedDuring>,
    ) -> Result<ContainerInfo, Abort> {
        let rules = &check.rules;
        let started = Instant::now();
        let deadline = started + rules.deadline.unwrap_or(self.settings.health_timeout);
        let counting_from = started + rules.start_period;
        let interval = rules.interval.unwrap_or(self.settings.health_interval);
        let per_try = rules
            .timeout
            .unwrap_or_else(|| self.settings.health_interval.max(Duration::from_secs(2)));
        let mut failures = 0u32;
        let mut healthy_since: Option<Instant> = None;
        // Most apps answer within moments of starting: ask again soon at first, then
        // every interval.
        let mut pause = Duration::from_millis(25).min(interval);
        loop {
            check_cancel(cancel)?;
            let (last, exit, info) = match self.probe_once(container, check, per_try).await? {
                Probed::Healthy(info) => {
                    let since = *healthy_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= rules.min_ready {
                        return Ok(info);
                    }
                    (None, None, info)
                }
                Probed::Not(why, info) => (Some(why), None, info),
                Probed::Exited(exit, info) => {
                    (Some("the container stopped".into()), Some(exit), info)
                }
            };
            if let Some(last) = last {
                healthy_since = None;
                if Instant::now() >= counting_from {
                    failures += 1;
                }
                let out_of_retries = rules.retries.filter(|r| failures >= *r);
                let gave_up = match (&exit, out_of_retries) {
                    (Some(exit), _) => {
                        Some(format!("the container exited with code {}", exit.code))
                    }
                    (None, Some(r)) => Some(format!("{r} failed checks in a row")),
                    (None, None) if Instant::now() >= deadline => Some(format!(
                        "not healthy within {} s",
                        (deadline - started).as_secs()
                    )),
                    (None, None) => None,
                };
                if let Some(gave_up) = gave_up {
                    if let Some(during) = during {
                        let app = container.labels.get(labels::APP).map_or("", String::as_str);
                        self.metrics.health_check_failed(app, during);
                    }
                    let unhealthy = self
                        .explain(&info, gave_up, last, started.elapsed(), exit, events)
                        .await;
                    return Err(Abort::Failed(unhealthy.to_string()));
                }
            }
            pause = (pause * 2).min(interval);
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                _ = cancel.changed() => {}
            }
        }
    }

    /// Gathers what a user needs to know about a failed replica, and streams its
    /// last log lines to the deploy's client.
    pub(super) async fn explain(
        &self,
        info: &ContainerInfo,
        gave_up: String,
        last: String,
        tried_for: Duration,
        exit: Option<Exit>,
        events: &Events,
    ) -> Unhealthy {
        let logs = self.last_logs(&info.id, &info.name, events).await;
        let skip = logs.len().saturating_sub(EXPLAIN_LOG_LINES);
        Unhealthy {
            replica: info.name.clone(),
            gave_up,
            last,
            tried_for,
            exit,
            docker_health: info.docker_health.clone().filter(|h| h != "healthy"),
            logs: logs.into_iter().skip(skip).collect(),
        }
    }

    /// The container's last 20 log lines, also sent to `events`.
    async fn last_logs(&self, id: &str, name: &str, events: &Events) -> Vec<String> {
        use futures_util::StreamExt;
        let mut collected = Vec::new();
        let Ok(mut lines) = self.runtime.logs(id, 20, false).await else {
            return collected;
        };
        while let Some(Ok(line)) = lines.next().await {
            collected.push(line.text.clone());
            let _ = events
                .send(Event::Log {
                    replica: name.to_string(),
                    stderr: line.stderr,
                    text: line.text,
                })
                .await;
        }
        collected
    }

    /// Waits until HAProxy reports every server in `names` up, so the old ones are
    /// only drained once traffic has somewhere to go.
    pub(super) async fn wait_routed(&self, app: &str, names: &[String]) -> Result<(), Abort> {
        let deadline = Instant::now() + ROUTED_TIMEOUT;
        let mut pause = Duration::from_millis(10);
        loop {
            let servers = self.proxy.servers(app).await?;
            let up = names.iter().all(|n| {
                servers
                    .iter()
                    .any(|s| &s.name == n && s.state.eq_ignore_ascii_case("up"))
            });
            if up {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let states: Vec<String> = servers
                    .iter()
                    .map(|s| format!("{} {}", s.name, s.state))
                    .collect();
                return Err(Abort::Failed(format!(
                    "HAProxy did not mark the new replicas up within {} s ({})",
                    ROUTED_TIMEOUT.as_secs(),
                    states.join(", ")
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }
}
