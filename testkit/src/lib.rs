//! What Haloy's tests share across crates: [`eventually`] and its async twin wait
//! for a condition and, when it never comes, fail with what was waited for, the
//! last thing seen and whatever context the caller can add (a daemon's log).

use std::fmt::Display;
use std::time::Duration;

/// One try of a condition: `Some`/`Ok` ends the wait with the value; `None` or
/// `Err` asks for another try, and an `Err`'s text is what the failure shows if the
/// wait times out (the command that ran and its output, say).
pub trait Attempt<T> {
    fn outcome(self) -> Result<T, Option<String>>;
}

impl<T> Attempt<T> for Option<T> {
    fn outcome(self) -> Result<T, Option<String>> {
        self.ok_or(None)
    }
}

impl Attempt<()> for bool {
    fn outcome(self) -> Result<(), Option<String>> {
        if self { Ok(()) } else { Err(None) }
    }
}

impl<T, E: Display> Attempt<T> for Result<T, E> {
    fn outcome(self) -> Result<T, Option<String>> {
        self.map_err(|e| Some(e.to_string()))
    }
}

/// How to wait: for what, how long, how often, and what to print besides the last
/// observation when the time is up.
pub struct Wait<'a> {
    what: &'a str,
    within: Duration,
    every: Duration,
    context: Option<&'a dyn Fn() -> String>,
}

impl<'a> Wait<'a> {
    /// Waits up to `within` for `what`, trying every 100 ms.
    pub fn new(within: Duration, what: &'a str) -> Self {
        Self {
            what,
            within,
            every: Duration::from_millis(100),
            context: None,
        }
    }

    pub fn every(mut self, every: Duration) -> Self {
        self.every = every;
        self
    }

    /// Text printed after the last observation on a timeout (a daemon's log).
    pub fn context(mut self, context: &'a dyn Fn() -> String) -> Self {
        self.context = Some(context);
        self
    }

    /// Tries `check` until it succeeds; panics with everything known on a timeout.
    pub fn until<T, A: Attempt<T>>(self, check: impl FnMut() -> A) -> T {
        self.attempts(check).unwrap_or_else(|last| self.fail(last))
    }

    /// Tries `check` until it succeeds; `None` when the time is up (for waits with
    /// a fallback, such as a SIGKILL after a SIGTERM that was not obeyed).
    pub fn poll<T, A: Attempt<T>>(self, check: impl FnMut() -> A) -> Option<T> {
        self.attempts(check).ok()
    }

    /// [`Wait::until`] for async checks, on tokio's clock (so paused time works).
    pub async fn until_async<T, A, F>(self, mut check: impl FnMut() -> F) -> T
    where
        A: Attempt<T>,
        F: Future<Output = A>,
    {
        let deadline = tokio::time::Instant::now() + self.within;
        loop {
            let last = match check().await.outcome() {
                Ok(value) => return value,
                Err(last) => last,
            };
            if tokio::time::Instant::now() >= deadline {
                self.fail(last);
            }
            tokio::time::sleep(self.every).await;
        }
    }

    fn attempts<T, A: Attempt<T>>(
        &self,
        mut check: impl FnMut() -> A,
    ) -> Result<T, Option<String>> {
        let deadline = std::time::Instant::now() + self.within;
        loop {
            let last = match check().outcome() {
                Ok(value) => return Ok(value),
                Err(last) => last,
            };
            if std::time::Instant::now() >= deadline {
                return Err(last);
            }
            std::thread::sleep(self.every);
        }
    }

    fn fail(&self, last: Option<String>) -> ! {
        let mut message = format!(
            "timed out after {:?} waiting for {}",
            self.within, self.what
        );
        if let Some(last) = last {
            message.push_str("\n--- last seen\n");
            message.push_str(&last);
        }
        if let Some(context) = self.context {
            message.push('\n');
            message.push_str(&context());
        }
        panic!("{message}");
    }
}

/// Tries `check` every 100 ms until it succeeds or `within` passes.
pub fn eventually<T, A: Attempt<T>>(within: Duration, what: &str, check: impl FnMut() -> A) -> T {
    Wait::new(within, what).until(check)
}

/// [`eventually`] for async checks.
pub async fn eventually_async<T, A, F>(within: Duration, what: &str, check: impl FnMut() -> F) -> T
where
    A: Attempt<T>,
    F: Future<Output = A>,
{
    Wait::new(within, what).until_async(check).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_first_success() {
        let mut tries = 0;
        let value = eventually(Duration::from_secs(5), "the third try", || {
            tries += 1;
            (tries == 3).then_some(tries)
        });
        assert_eq!(value, 3);
    }

    #[test]
    fn a_timeout_shows_the_last_observation_and_the_context() {
        let log = || "--- daemon.log\nlistening".to_string();
        let failure = std::panic::catch_unwind(|| {
            Wait::new(Duration::from_millis(50), "a ready server")
                .every(Duration::from_millis(10))
                .context(&log)
                .until(|| Err::<(), _>("curl: connection refused"))
        })
        .expect_err("never ready");
        let message = failure.downcast_ref::<String>().expect("a formatted panic");
        assert!(message.contains("waiting for a ready server"), "{message}");
        assert!(message.contains("curl: connection refused"), "{message}");
        assert!(message.contains("--- daemon.log\nlistening"), "{message}");
    }

    #[test]
    fn poll_gives_up_quietly() {
        let waited = Wait::new(Duration::from_millis(30), "never")
            .every(Duration::from_millis(10))
            .poll(|| None::<()>);
        assert_eq!(waited, None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_async_wait_runs_on_tokio_time() {
        let start = tokio::time::Instant::now();
        let mut tries = 0;
        eventually_async(Duration::from_secs(60), "ten tries", || {
            tries += 1;
            let done = tries == 10;
            async move { done.then_some(()) }
        })
        .await;
        assert_eq!(start.elapsed(), Duration::from_millis(900));
    }
}
