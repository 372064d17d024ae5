//! One owner per app. Each app that something is done to has a task of its own that
//! takes commands over a channel (deploy, stop, prune, recover, a status snapshot)
//! and runs one change at a time; a second change while one runs is refused with
//! what runs and for how long. Handlers validate, send, and await the reply.
//!
//! The map of owners holds only apps with a task: a task that stays idle (and has no
//! problem to report) removes itself, under the map's lock so that no command is
//! lost in between. Read-only questions never start a task.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use haloy_api::spec::AppSpec;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::Engine;
use super::canary::CanaryOutcome;
use super::events::{Cancel, EngineError, Events};
pub use super::events::{StopOptions, Stopped};
use super::image::ImageRequest;
use super::maintenance::MaintenanceSwitch;
use super::prune::Pruned;
use super::recovery::AppPlan;
use crate::store::maintenance::Maintenance;

/// How long an owner with nothing to do waits for a command before it goes away.
const IDLE: Duration = Duration::from_secs(30);

/// A deploy as the API hands it over.
pub struct DeployRequest {
    pub spec: AppSpec,
    pub image: ImageRequest,
    /// A client's id for a deploy to several servers; used when it fits.
    pub proposed_id: Option<String>,
    /// Where the deploy's events go; `Event::Finished` is the last.
    pub events: Events,
    pub cancel: Cancel,
    pub options: DeployOptions,
}

/// What the client allowed or asked for beyond the spec.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeployOptions {
    /// Replacing the running container of a protected app is allowed.
    pub include_protected: bool,
    /// Start the new version beside the old one with this share of requests
    /// (1-99) and rest there until a promote or an abort.
    pub canary_percent: Option<u8>,
}

/// What an app's owner is doing and what it knows, for `haloy status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// What runs, e.g. "a deploy (deployment …)", and for how long.
    pub activity: Option<(String, Duration)>,
    /// Why the app could not be restored after a restart, until a deploy succeeds.
    pub problem: Option<String>,
}

pub(super) enum Command {
    Deploy(
        Box<DeployRequest>,
        oneshot::Sender<Result<String, EngineError>>,
    ),
    Stop(StopOptions, oneshot::Sender<Result<Stopped, EngineError>>),
    Prune(bool, oneshot::Sender<Result<Pruned, EngineError>>),
    Recover(Box<AppPlan>),
    /// Promote (true) or abort (false) the app's canary.
    Canary(bool, oneshot::Sender<Result<CanaryOutcome, EngineError>>),
    /// The watchdog found this replica failing: (name, why).
    Heal(String, String),
    /// The watchdog found this unrouted replica of the serving version healthy.
    Reroute(String),
    Snapshot(oneshot::Sender<Snapshot>),
    Maintenance(
        MaintenanceSwitch,
        oneshot::Sender<Result<Option<Maintenance>, EngineError>>,
    ),
}

/// How a finished change leaves the app's problem.
pub(super) enum After {
    Keep,
    Clear,
    Problem(String),
}

/// The owners' mailboxes, by app.
#[derive(Default)]
pub(super) struct Owners {
    map: Mutex<HashMap<String, mpsc::UnboundedSender<Command>>>,
}

impl Owners {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::UnboundedSender<Command>>> {
        // A panic while holding this lock leaves the map itself intact.
        self.map
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many apps have an owner now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Lets an idle owner go unless a command arrived meanwhile, which it gets back.
    fn release(&self, app: &str, inbox: &mut mpsc::UnboundedReceiver<Command>) -> Option<Command> {
        let mut map = self.lock();
        match inbox.try_recv() {
            Ok(command) => Some(command),
            Err(_) => {
                map.remove(app);
                inbox.close();
                None
            }
        }
    }
}

/// What an owner is busy with.
struct Activity {
    what: String,
    since: Instant,
    deployment: Option<String>,
}

impl Engine {
    /// Sends `command` to `app`'s owner, starting one if it has none. Commands are
    /// sent under the map's lock, so an owner that goes away never drops one.
    pub(super) fn send(self: &Arc<Self>, app: &str, command: Command) {
        let mut map = self.owners.lock();
        let command = match map.get(app) {
            Some(inbox) => match inbox.send(command) {
                Ok(()) => return,
                Err(mpsc::error::SendError(command)) => command,
            },
            None => command,
        };
        let (inbox_tx, inbox) = mpsc::unbounded_channel();
        // The receiver is alive: it was made just above.
        let _ = inbox_tx.send(command);
        map.insert(app.to_string(), inbox_tx);
        tokio::spawn(self.clone().own(app.to_string(), inbox));
    }

    /// Hands a deploy to the app's owner; answers with the deployment id once the
    /// deploy is on record, or why it cannot run now.
    pub async fn deploy(
        self: &Arc<Self>,
        mut request: DeployRequest,
    ) -> Result<String, EngineError> {
        if request.spec.preset.is_some() {
            // Accessories keep no image history: one version, replaced in place.
            request.spec.image.history = haloy_api::spec::History::None;
        }
        let app = request.spec.name.clone();
        let (reply, answer) = oneshot::channel();
        self.send(&app, Command::Deploy(Box::new(request), reply));
        answer.await.map_err(|_| EngineError::ShuttingDown)?
    }

    /// Stops every container of the app (and removes them with `remove`).
    pub async fn stop(self: &Arc<Self>, app: &str, remove: bool) -> Result<Stopped, EngineError> {
        let options = StopOptions {
            remove,
            include_protected: false,
        };
        self.stop_with(app, options).await
    }

    /// Stops the app's containers as `options` say.
    pub async fn stop_with(
        self: &Arc<Self>,
        app: &str,
        options: StopOptions,
    ) -> Result<Stopped, EngineError> {
        let (reply, answer) = oneshot::channel();
        self.send(app, Command::Stop(options, reply));
        answer.await.map_err(|_| EngineError::ShuttingDown)?
    }

    /// Removes (or with `dry_run` lists) the images outside the app's history.
    pub async fn prune(self: &Arc<Self>, app: &str, dry_run: bool) -> Result<Pruned, EngineError> {
        let (reply, answer) = oneshot::channel();
        self.send(app, Command::Prune(dry_run, reply));
        answer.await.map_err(|_| EngineError::ShuttingDown)?
    }

    /// Gives the app's canary every request and retires the previous version.
    pub async fn canary_promote(self: &Arc<Self>, app: &str) -> Result<CanaryOutcome, EngineError> {
        let (reply, answer) = oneshot::channel();
        self.send(app, Command::Canary(true, reply));
        answer.await.map_err(|_| EngineError::ShuttingDown)?
    }

    /// Removes the app's canary; the previous version takes every request again.
    pub async fn canary_abort(self: &Arc<Self>, app: &str) -> Result<CanaryOutcome, EngineError> {
        let (reply, answer) = oneshot::channel();
        self.send(app, Command::Canary(false, reply));
        answer.await.map_err(|_| EngineError::ShuttingDown)?
    }

    /// Asks the app's owner to restart a failing replica; dropped when it is busy.
    pub(super) fn heal_later(self: &Arc<Self>, app: &str, replica: String, why: String) {
        self.send(app, Command::Heal(replica, why));
    }

    /// Asks the app's owner to route a healthy replica again; dropped when busy.
    pub(super) fn reroute_later(self: &Arc<Self>, app: &str, replica: String) {
        self.send(app, Command::Reroute(replica));
    }

    pub(super) fn recover_later(self: &Arc<Self>, plan: AppPlan) {
        let app = plan.app.clone();
        self.send(&app, Command::Recover(Box::new(plan)));
    }

    /// What the app's owner is doing, if the app has one.
    pub async fn snapshot(&self, app: &str) -> Snapshot {
        let (reply, answer) = oneshot::channel();
        let sent = self
            .owners
            .lock()
            .get(app)
            .is_some_and(|inbox| inbox.send(Command::Snapshot(reply)).is_ok());
        if !sent {
            return Snapshot::default();
        }
        answer.await.unwrap_or_default()
    }

    /// The owner's loop: one change at a time, answering everything else meanwhile.
    async fn own(self: Arc<Self>, app: String, mut inbox: mpsc::UnboundedReceiver<Command>) {
        let mut activity: Option<Activity> = None;
        let mut running: Option<BoxFuture<'static, After>> = None;
        let mut problem: Option<String> = None;
        loop {
            let command = tokio::select! {
                command = inbox.recv() => match command {
                    Some(command) => command,
                    None => return,
                },
                after = async {
                    match running.as_mut() {
                        Some(change) => change.await,
                        None => std::future::pending().await,
                    }
                }, if running.is_some() => {
                    running = None;
                    activity = None;
                    match after {
                        After::Keep => {}
                        After::Clear => problem = None,
                        After::Problem(p) => problem = Some(p),
                    }
                    continue;
                }
                () = tokio::time::sleep(IDLE), if running.is_none() && problem.is_none() => {
                    match self.owners.release(&app, &mut inbox) {
                        Some(command) => command,
                        None => return,
                    }
                }
            };
            if let Command::Snapshot(reply) = command {
                let _ = reply.send(Snapshot {
                    activity: activity
                        .as_ref()
                        .map(|a| (a.what.clone(), a.since.elapsed())),
                    problem: problem.clone(),
                });
                continue;
            }
            if let Some(busy) = &activity {
                let error = EngineError::Busy {
                    app: app.clone(),
                    activity: busy.what.clone(),
                    deployment: busy.deployment.clone(),
                    running_for: busy.since.elapsed(),
                };
                refuse(command, error);
                continue;
            }
            let (what, deployment, change) = match self.start(&app, command) {
                Some(started) => started,
                None => continue,
            };
            activity = Some(Activity {
                what,
                since: Instant::now(),
                deployment,
            });
            running = Some(change);
        }
    }

    /// Begins a change: what it is, the deployment it is for, and the work itself.
    /// `None` when it was refused at once (the reply says why).
    fn start(
        self: &Arc<Self>,
        app: &str,
        command: Command,
    ) -> Option<(String, Option<String>, BoxFuture<'static, After>)> {
        let engine = self.clone();
        match command {
            Command::Deploy(request, reply) => {
                let record = match self.accept(&request) {
                    Ok(record) => record,
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        return None;
                    }
                };
                let id = record.id.clone();
                let _ = reply.send(Ok(id.clone()));
                let DeployRequest {
                    spec,
                    image,
                    events,
                    cancel,
                    options,
                    ..
                } = *request;
                let events = engine.metrics.tap(&spec.name, events);
                let change = Box::pin(async move {
                    let outcome = engine
                        .run_deploy(record, spec, image, events, cancel, options.canary_percent)
                        .await;
                    if outcome.status == crate::store::Status::Succeeded {
                        After::Clear
                    } else {
                        After::Keep
                    }
                });
                Some((format!("a deploy (deployment {id})"), Some(id), change))
            }
            Command::Stop(options, reply) => {
                let app = app.to_string();
                let change = Box::pin(async move {
                    let _ = reply.send(engine.stop_containers(&app, options).await);
                    After::Keep
                });
                Some(("a stop".into(), None, change))
            }
            Command::Prune(dry_run, reply) => {
                let app = app.to_string();
                let change = Box::pin(async move {
                    let _ = reply.send(engine.prune_images(&app, dry_run).await);
                    After::Keep
                });
                Some(("image pruning".into(), None, change))
            }
            Command::Recover(plan) => {
                let deployment = plan.interrupted.as_ref().map(|r| r.id.clone());
                let change = Box::pin(async move { engine.recover_app(*plan).await });
                Some((
                    "restoring the app after haloyd started".into(),
                    deployment,
                    change,
                ))
            }
            Command::Canary(promote, reply) => {
                let app = app.to_string();
                let what = if promote {
                    "promoting the canary"
                } else {
                    "aborting the canary"
                };
                let change = Box::pin(async move {
                    let result = if promote {
                        engine.promote_canary(&app).await
                    } else {
                        engine.abort_canary(&app).await
                    };
                    let after = match &result {
                        Ok(o) if o.status == crate::store::Status::Succeeded => After::Clear,
                        _ => After::Keep,
                    };
                    let _ = reply.send(result);
                    after
                });
                Some((what.into(), None, change))
            }
            Command::Heal(replica, why) => {
                let app = app.to_string();
                let what = format!("restarting replica {replica} after it failed");
                let change = Box::pin(async move {
                    engine.heal(&app, &replica, why).await;
                    After::Keep
                });
                Some((what, None, change))
            }
            Command::Reroute(replica) => {
                let app = app.to_string();
                let what = format!("routing replica {replica} again");
                let change = Box::pin(async move {
                    engine.reroute(&app, &replica).await;
                    After::Keep
                });
                Some((what, None, change))
            }
            Command::Maintenance(switch, reply) => {
                let app = app.to_string();
                let what = match switch {
                    MaintenanceSwitch::On { .. } => "turning maintenance mode on",
                    MaintenanceSwitch::Off => "turning maintenance mode off",
                };
                let change = Box::pin(async move {
                    let _ = reply.send(engine.switch_maintenance(&app, switch).await);
                    After::Keep
                });
                Some((what.into(), None, change))
            }
            Command::Snapshot(_) => None,
        }
    }
}

/// Answers a change that cannot run now with `error`.
fn refuse(command: Command, error: EngineError) {
    match command {
        Command::Deploy(_, reply) => {
            let _ = reply.send(Err(error));
        }
        Command::Stop(_, reply) => {
            let _ = reply.send(Err(error));
        }
        Command::Prune(_, reply) => {
            let _ = reply.send(Err(error));
        }
        // Recovery is sent once, at start, before anything else can run.
        Command::Recover(plan) => {
            tracing::warn!(app = %plan.app, "recovery refused: {error}");
        }
        Command::Canary(_, reply) => {
            let _ = reply.send(Err(error));
        }
        Command::Heal(replica, _) | Command::Reroute(replica) => {
            tracing::info!(%replica, "not restarting the failed replica now: {error}");
        }
        Command::Maintenance(_, reply) => {
            let _ = reply.send(Err(error));
        }
        Command::Snapshot(_) => {}
    }
}
