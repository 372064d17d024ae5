//! Printing a fan-out over targets (the controller's runner): each target's lines as
//! they come, prefixed with the target when there are several, and one error naming
//! the targets that failed.

use std::io::Write;

use haloy_controller::fanout::{self, Lines, Target};
use tokio::sync::mpsc;

/// Runs `job` for every target through the controller's fan-out, at most
/// `concurrency` at once, printing the lines each says as they come. With several targets a failing job's error is said on
/// stderr at once (the others may run for long yet). Returns each target's label and
/// result, in target order.
pub async fn each_target<T, F, Fut>(
    targets: &[Target],
    concurrency: usize,
    out: &mut dyn Write,
    job: F,
) -> anyhow::Result<Vec<(String, anyhow::Result<T>)>>
where
    T: Send + 'static,
    F: Fn(&Target, Lines) -> Fut,
    Fut: Future<Output = anyhow::Result<T>> + Send + 'static,
{
    let many = targets.len() > 1;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let run = fanout::run(targets, concurrency, tx, |target, lines| {
        let label = target.label().to_string();
        let work = job(target, lines);
        async move {
            let result = work.await;
            if let Err(e) = &result
                && many
            {
                eprintln!("error: [{label}] {e:#}");
            }
            result
        }
    });
    tokio::pin!(run);
    let finished = loop {
        tokio::select! {
            finished = &mut run => break finished,
            Some(line) = rx.recv() => print_line(out, &line, many)?,
        }
    };
    // Lines said just before their job ended.
    while let Ok(line) = rx.try_recv() {
        print_line(out, &line, many)?;
    }
    Ok(finished
        .into_iter()
        .map(|f| {
            let result = f
                .result
                .map_err(|e| anyhow::Error::new(e).context("internal error"));
            (f.target, result.and_then(|r| r))
        })
        .collect())
}

fn print_line(out: &mut dyn Write, line: &fanout::Line, many: bool) -> anyhow::Result<()> {
    writeln!(out, "{}{}", prefix(&line.target, many), line.text)?;
    out.flush()?;
    Ok(())
}

/// Every target's value, or an error: with one target its own, with several one that
/// names the failed targets.
pub fn all_succeeded<T>(results: Vec<(String, anyhow::Result<T>)>) -> anyhow::Result<Vec<T>> {
    let total = results.len();
    let (mut done, mut failed) = (Vec::new(), Vec::new());
    for (label, result) in results {
        match result {
            Ok(value) => done.push(value),
            Err(e) => failed.push((label, e)),
        }
    }
    match failed.len() {
        0 => Ok(done),
        1 if total == 1 => Err(failed.remove(0).1),
        _ => anyhow::bail!(
            "{} of {total} targets failed: {}",
            failed.len(),
            failed
                .iter()
                .map(|(label, _)| label.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A prefix for output lines when several targets are involved.
pub fn prefix(label: &str, many: bool) -> String {
    if many {
        format!("[{label}] ")
    } else {
        String::new()
    }
}
