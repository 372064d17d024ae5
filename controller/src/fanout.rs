//! The runner behind every command that acts on several targets: one job per target,
//! at most `concurrency` at a time, each saying its lines tagged with its target. One
//! failing target does not stop the others; results come back in target order.

use std::sync::Arc;

use haloy_api::spec::Secret;
use tokio::sync::{Semaphore, mpsc};

use crate::config::plan::TargetPlan;

/// Targets worked on at the same time unless a command says otherwise.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// One target, ready to connect.
#[derive(Debug, Clone)]
pub struct Target {
    pub plan: TargetPlan,
    pub server: String,
    pub token: Secret,
}

impl Target {
    /// The target's name, or the app's without targets.
    pub fn label(&self) -> &str {
        self.plan.label()
    }
}

/// What the runner needs of a job's input: the target it is for.
pub trait Labelled {
    fn label(&self) -> &str;
}

impl Labelled for Target {
    fn label(&self) -> &str {
        self.plan.label()
    }
}

/// A line of output from one target (or `global` for a deploy's global hooks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub target: String,
    pub text: String,
    /// Upload progress (bytes sent, total) instead of text, for progress bars.
    pub upload: Option<(u64, u64)>,
}

/// Where one target's job says things.
#[derive(Debug, Clone)]
pub struct Lines {
    target: String,
    tx: mpsc::UnboundedSender<Line>,
}

impl Lines {
    pub fn new(target: &str, tx: mpsc::UnboundedSender<Line>) -> Self {
        Self {
            target: target.to_string(),
            tx,
        }
    }

    pub fn target(&self) -> &str {
        &self.target
    }

    pub fn say(&self, text: impl std::fmt::Display) {
        let _ = self.tx.send(Line {
            target: self.target.clone(),
            text: text.to_string(),
            upload: None,
        });
    }

    /// A channel for code that says plain lines (hooks); they arrive tagged.
    pub fn forwarder(&self) -> mpsc::UnboundedSender<String> {
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        let lines = self.clone();
        tokio::spawn(async move {
            while let Some(text) = rx.recv().await {
                lines.say(text);
            }
        });
        tx
    }

    pub fn upload(&self, sent: u64, total: u64) {
        let _ = self.tx.send(Line {
            target: self.target.clone(),
            text: String::new(),
            upload: Some((sent, total)),
        });
    }
}

/// How one target's job ended.
#[derive(Debug)]
pub struct Finished<R> {
    pub target: String,
    /// The job's result; `Err` if the job panicked.
    pub result: Result<R, tokio::task::JoinError>,
}

/// Runs `job` for every target, at most `concurrency` at once, with its lines going
/// to `lines`. Returns every job's result, in target order, once all have ended.
pub async fn run<T, R, F, Fut>(
    targets: &[T],
    concurrency: usize,
    lines: mpsc::UnboundedSender<Line>,
    job: F,
) -> Vec<Finished<R>>
where
    T: Labelled,
    R: Send + 'static,
    F: Fn(&T, Lines) -> Fut,
    Fut: std::future::Future<Output = R> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let tasks: Vec<_> = targets
        .iter()
        .map(|target| {
            let work = job(target, Lines::new(target.label(), lines.clone()));
            let permits = permits.clone();
            let task = tokio::spawn(async move {
                // The semaphore is never closed, so acquiring cannot fail.
                let _permit = permits.acquire_owned().await;
                work.await
            });
            (target.label().to_string(), task)
        })
        .collect();
    drop(lines);
    let mut finished = Vec::new();
    for (target, task) in tasks {
        let result = task.await;
        finished.push(Finished { target, result });
    }
    finished
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    struct Named(String);

    impl Labelled for Named {
        fn label(&self) -> &str {
            &self.0
        }
    }

    #[tokio::test]
    async fn runs_at_most_the_limit_at_once_and_keeps_target_order() {
        let targets: Vec<Named> = (0..5).map(|i| Named(format!("t{i}"))).collect();
        let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let finished = run(&targets, 2, tx, |t, lines| {
            let (running, peak) = (running.clone(), peak.clone());
            let fail = t.label() == "t3";
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                lines.say("done");
                running.fetch_sub(1, Ordering::SeqCst);
                if fail { Err("broken") } else { Ok(()) }
            }
        })
        .await;
        assert_eq!(peak.load(Ordering::SeqCst), 2);
        let order: Vec<&str> = finished.iter().map(|f| f.target.as_str()).collect();
        assert_eq!(order, ["t0", "t1", "t2", "t3", "t4"]);
        let failed: Vec<&str> = finished
            .iter()
            .filter(|f| !matches!(f.result, Ok(Ok(()))))
            .map(|f| f.target.as_str())
            .collect();
        assert_eq!(failed, ["t3"]);
        let mut said = Vec::new();
        while let Some(line) = rx.recv().await {
            said.push(line.target);
        }
        said.sort();
        assert_eq!(said, ["t0", "t1", "t2", "t3", "t4"]);
    }
}
