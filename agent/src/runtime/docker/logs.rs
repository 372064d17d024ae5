//! Container output as lines. Docker sends frames, one per log entry, each
//! prefixed with its timestamp; an entry is usually one line, but a long line comes
//! in several entries and an entry may hold several lines, so frames are re-split
//! per stream.

use std::collections::VecDeque;

use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::stream::{self, BoxStream, StreamExt};

use super::{container, error};
use crate::runtime::{LogLine, RuntimeError};

pub(super) async fn stream(
    client: &bollard::Docker,
    id: &str,
    tail: usize,
    follow: bool,
) -> Result<BoxStream<'static, Result<LogLine, RuntimeError>>, RuntimeError> {
    // The stream itself would only fail on its first poll, which with `follow` and
    // no output may never come: ask first, so a missing container fails here.
    container::inspect(client, id).await?;
    let options = LogsOptionsBuilder::new()
        .stdout(true)
        .stderr(true)
        .timestamps(true)
        .follow(follow)
        .tail(&tail.to_string())
        .build();
    let follower = Follower {
        id: id.to_string(),
        frames: client.logs(id, Some(options)).boxed(),
        lines: Lines::default(),
        ready: VecDeque::new(),
        failed: None,
        ended: false,
    };
    Ok(stream::unfold(follower, Follower::next).boxed())
}

/// The state behind the stream `stream` returns.
struct Follower {
    id: String,
    frames: BoxStream<'static, Result<LogOutput, bollard::errors::Error>>,
    lines: Lines,
    ready: VecDeque<LogLine>,
    /// Yielded once the lines before it are out.
    failed: Option<RuntimeError>,
    ended: bool,
}

impl Follower {
    async fn next(mut self) -> Option<(Result<LogLine, RuntimeError>, Self)> {
        loop {
            if let Some(line) = self.ready.pop_front() {
                return Some((Ok(line), self));
            }
            if let Some(err) = self.failed.take() {
                return Some((Err(err), self));
            }
            if self.ended {
                return None;
            }
            match self.frames.next().await {
                Some(Ok(frame)) => self.lines.push(frame, &mut self.ready),
                Some(Err(err)) => {
                    self.ended = true;
                    self.lines.finish(&mut self.ready);
                    self.failed = Some(error::container(&self.id, err));
                }
                None => {
                    self.ended = true;
                    self.lines.finish(&mut self.ready);
                }
            }
        }
    }
}

/// The longest piece of one line kept before it goes out unfinished.
pub(super) const MAX_LINE_BYTES: usize = 64 * 1024;

/// The largest index at most `at` that does not cut a UTF-8 character in two
/// (`at` itself when the bytes are not UTF-8 there).
fn char_boundary(bytes: &[u8], at: usize) -> usize {
    let is_continuation = |b: u8| b & 0b1100_0000 == 0b1000_0000;
    (at.saturating_sub(3)..=at)
        .rev()
        .find(|&i| i == 0 || i >= bytes.len() || !is_continuation(bytes[i]))
        .filter(|&i| i > 0)
        .unwrap_or(at)
}

/// Splits frames into lines, keeping an unfinished line per stream until its end
/// arrives; a line longer than [`MAX_LINE_BYTES`] goes out in pieces.
#[derive(Debug, Default)]
pub(super) struct Lines {
    stdout: Option<Unfinished>,
    stderr: Option<Unfinished>,
}

#[derive(Debug)]
struct Unfinished {
    /// Bytes, not text: a character may be cut in two where a long line is.
    bytes: Vec<u8>,
    timestamp: Option<String>,
}

impl Lines {
    pub(super) fn push(&mut self, frame: LogOutput, out: &mut VecDeque<LogLine>) {
        let (stderr, frame) = match frame {
            LogOutput::StdErr { message } => (true, message),
            LogOutput::StdOut { message } | LogOutput::Console { message } => (false, message),
            LogOutput::StdIn { .. } => return,
        };
        let (timestamp, text) = split_timestamp(&frame);
        let pending = if stderr {
            &mut self.stderr
        } else {
            &mut self.stdout
        };
        let mut pieces = text.split(|b| *b == b'\n').peekable();
        while let Some(piece) = pieces.next() {
            let last = pieces.peek().is_none();
            let unfinished = pending.get_or_insert_with(|| Unfinished {
                bytes: Vec::new(),
                timestamp: timestamp.clone(),
            });
            unfinished.bytes.extend_from_slice(piece);
            // A container that never ends its line must not grow this without
            // bound: the line goes out in pieces of at most MAX_LINE_BYTES.
            while unfinished.bytes.len() > MAX_LINE_BYTES {
                let cut = char_boundary(&unfinished.bytes, MAX_LINE_BYTES);
                let rest = unfinished.bytes.split_off(cut);
                let piece = std::mem::replace(&mut unfinished.bytes, rest);
                out.push_back(LogLine {
                    stderr,
                    text: String::from_utf8_lossy(&piece).into_owned(),
                    timestamp: unfinished.timestamp.clone(),
                });
            }
            if last {
                // What follows the final newline (usually nothing) waits for more.
                if unfinished.bytes.is_empty() {
                    *pending = None;
                }
                break;
            }
            if let Some(done) = pending.take() {
                out.push_back(done.into_line(stderr));
            }
        }
    }

    /// The stream ended: unfinished lines are all there will be.
    pub(super) fn finish(&mut self, out: &mut VecDeque<LogLine>) {
        if let Some(done) = self.stdout.take() {
            out.push_back(done.into_line(false));
        }
        if let Some(done) = self.stderr.take() {
            out.push_back(done.into_line(true));
        }
    }
}

impl Unfinished {
    fn into_line(self, stderr: bool) -> LogLine {
        let bytes = self.bytes.strip_suffix(b"\r").unwrap_or(&self.bytes);
        LogLine {
            stderr,
            text: String::from_utf8_lossy(bytes).into_owned(),
            timestamp: self.timestamp,
        }
    }
}

/// `2024-05-01T10:00:00.123456789Z message` → the timestamp and the message.
fn split_timestamp(frame: &[u8]) -> (Option<String>, &[u8]) {
    let Some(space) = frame.iter().position(|b| *b == b' ') else {
        return (None, frame);
    };
    let (timestamp, text) = (&frame[..space], &frame[space + 1..]);
    if timestamp.len() >= 20 && timestamp[..4].iter().all(u8::is_ascii_digit) {
        (Some(String::from_utf8_lossy(timestamp).into_owned()), text)
    } else {
        (None, frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(text: &str) -> LogOutput {
        LogOutput::StdOut {
            message: text.as_bytes().to_vec().into(),
        }
    }

    fn err(text: &str) -> LogOutput {
        LogOutput::StdErr {
            message: text.as_bytes().to_vec().into(),
        }
    }

    fn split(frames: Vec<LogOutput>) -> Vec<(bool, String, Option<String>)> {
        let mut lines = Lines::default();
        let mut ready = VecDeque::new();
        for frame in frames {
            lines.push(frame, &mut ready);
        }
        lines.finish(&mut ready);
        ready
            .into_iter()
            .map(|l| (l.stderr, l.text, l.timestamp))
            .collect()
    }

    const T1: &str = "2024-05-01T10:00:00.1Z";
    const T2: &str = "2024-05-01T10:00:01.123456789Z";

    #[test]
    fn one_frame_per_line_with_timestamps() {
        let got = split(vec![
            out(&format!("{T1} hello\n")),
            err(&format!("{T2} oops\r\n")),
        ]);
        assert_eq!(
            got,
            [
                (false, "hello".into(), Some(T1.into())),
                (true, "oops".into(), Some(T2.into())),
            ]
        );
    }

    #[test]
    fn long_lines_arrive_in_pieces_and_are_joined_per_stream() {
        let got = split(vec![
            out(&format!("{T1} first half, ")),
            err(&format!("{T1} interleaved\n")),
            out(&format!("{T2} second half\n")),
        ]);
        assert_eq!(
            got,
            [
                (true, "interleaved".into(), Some(T1.into())),
                (false, "first half, second half".into(), Some(T1.into())),
            ]
        );
    }

    #[test]
    fn several_lines_in_one_frame_and_an_unterminated_last_line() {
        let got = split(vec![out(&format!("{T1} a\n\nb\nc"))]);
        let texts: Vec<_> = got.iter().map(|(_, text, _)| text.as_str()).collect();
        assert_eq!(texts, ["a", "", "b", "c"]);
        assert!(got.iter().all(|(_, _, ts)| ts.as_deref() == Some(T1)));
    }

    #[test]
    fn a_character_cut_between_pieces_survives() {
        let bytes = "€".as_bytes();
        let mut first = format!("{T1} price: ").into_bytes();
        first.push(bytes[0]);
        let mut second = format!("{T2} ").into_bytes();
        second.extend_from_slice(&bytes[1..]);
        second.push(b'\n');
        let got = split(vec![
            LogOutput::StdOut {
                message: first.into(),
            },
            LogOutput::StdOut {
                message: second.into(),
            },
        ]);
        assert_eq!(got, [(false, "price: €".into(), Some(T1.into()))]);
    }

    #[test]
    fn a_line_without_end_goes_out_in_bounded_pieces() {
        let mut lines = Lines::default();
        let mut ready = VecDeque::new();
        // 1 MiB of "é" (two bytes each) in 16 KiB frames, never a newline.
        let frame = "é".repeat(8 * 1024);
        for _ in 0..64 {
            lines.push(out(&format!("{T1} {frame}")), &mut ready);
            let held = lines.stdout.as_ref().map_or(0, |u| u.bytes.len());
            assert!(held <= MAX_LINE_BYTES, "holds {held} bytes");
        }
        lines.finish(&mut ready);
        let texts: Vec<&str> = ready.iter().map(|l| l.text.as_str()).collect();
        assert!(texts.len() >= 16, "{} pieces", texts.len());
        assert!(texts.iter().all(|t| t.len() <= MAX_LINE_BYTES));
        // No character was cut in two, and nothing was lost.
        assert!(texts.iter().all(|t| !t.contains('\u{FFFD}')));
        assert_eq!(texts.concat(), frame.repeat(64));
    }

    #[test]
    fn frames_without_timestamps_are_kept_whole() {
        assert_eq!(
            split(vec![out("plain text\n")]),
            [(false, "plain text".into(), None)]
        );
    }
}
