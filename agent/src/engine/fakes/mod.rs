//! Recording fakes of the runtime, proxy and health-probe seams for the engine's
//! state-machine tests, without sockets: a fake container "listens" on a made-up
//! port, and the fake probe answers for the container behind that port (images
//! named `*unhealthy*` answer 500, `*crash*` containers exit at once). Any method
//! can be made to fail.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod proxy;
mod runtime;

pub use proxy::{FakeProbe, FakeProxy};
pub use runtime::FakeRuntime;

use super::Seams;
use super::clock::TokioClock;

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

/// The calls a fake received ("method args"), the methods told to fail, and the
/// calls told to hang — where a test "kills haloyd".
#[derive(Default)]
pub struct CallLog {
    calls: Mutex<Vec<String>>,
    /// Method name → error message it fails with.
    failures: Mutex<HashMap<&'static str, String>>,
    /// Method name → how many more of its calls go through before one hangs.
    hangs: Mutex<HashMap<&'static str, usize>>,
    /// Told when a call hangs.
    pub hung: tokio::sync::Notify,
}

impl CallLog {
    /// Records `call`; the error message if its method was told to fail. A call
    /// told to hang never returns.
    pub(super) async fn enter(&self, call: String) -> Result<(), String> {
        let method = call.split(' ').next().unwrap_or_default().to_string();
        self.calls.lock().unwrap().push(call);
        let hang = match self.hangs.lock().unwrap().get_mut(method.as_str()) {
            Some(0) => true,
            Some(n) => {
                *n -= 1;
                false
            }
            None => false,
        };
        if hang {
            self.hung.notify_one();
            std::future::pending::<()>().await;
        }
        match self.failures.lock().unwrap().get(method.as_str()) {
            Some(message) => Err(message.clone()),
            None => Ok(()),
        }
    }

    /// The error `method` was told to fail with, for reads that are not recorded.
    pub(super) fn failure(&self, method: &str) -> Option<String> {
        self.failures.lock().unwrap().get(method).cloned()
    }

    /// Makes the call of `method` after the next `after` ones hang.
    pub fn hang(&self, method: &'static str, after: usize) {
        self.hangs.lock().unwrap().insert(method, after);
    }

    /// Lets every method through again.
    pub fn clear(&self) {
        self.hangs.lock().unwrap().clear();
        self.failures.lock().unwrap().clear();
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

/// Fakes behind every seam, with a clock that starts now and follows tokio's time.
pub fn seams() -> (Seams, Arc<FakeRuntime>, Arc<FakeProxy>) {
    let runtime = Arc::new(FakeRuntime::default());
    let proxy = Arc::new(FakeProxy::default());
    let seams = Seams {
        runtime: runtime.clone(),
        proxy: proxy.clone(),
        probe: Arc::new(FakeProbe(runtime.clone())),
        clock: Arc::new(TokioClock::new(crate::ids::now_ms())),
    };
    (seams, runtime, proxy)
}
