//! The wall clock seam: deployment ids and record times come from [`Clock`], so the
//! engine's tests run on tokio's paused time with a clock that follows it. Durations
//! (deadlines, pauses) use `tokio::time`, which paused tests advance by themselves.

/// Milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> u64;
}

/// The system's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        crate::ids::now_ms()
    }
}

/// A clock that starts at `start_ms` and advances with tokio's (possibly paused)
/// time, for tests.
pub struct TokioClock {
    start_ms: u64,
    origin: tokio::time::Instant,
}

impl TokioClock {
    pub fn new(start_ms: u64) -> Self {
        Self {
            start_ms,
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now_ms(&self) -> u64 {
        let elapsed = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.start_ms.saturating_add(elapsed)
    }
}
