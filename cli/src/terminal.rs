//! The workstation's terminal for `haloy exec -i`: its size, and raw mode that is
//! undone when the guard drops (on return, error and panic alike).

use std::io::IsTerminal;

use rustix::termios::{self, OptionalActions, Termios};

/// The terminal's size (rows, columns), from stdout or else stdin.
pub fn size() -> Option<(u16, u16)> {
    let from = |size: rustix::io::Result<termios::Winsize>| {
        size.ok()
            .filter(|s| s.ws_row > 0 && s.ws_col > 0)
            .map(|s| (s.ws_row, s.ws_col))
    };
    from(termios::tcgetwinsize(std::io::stdout()))
        .or_else(|| from(termios::tcgetwinsize(std::io::stdin())))
}

/// Raw mode on stdin's terminal while it lives: no line editing, no echo, and
/// control characters (Ctrl-C, Ctrl-Z, Ctrl-D) passed on as bytes.
pub struct RawMode {
    original: Termios,
}

impl RawMode {
    pub fn enter() -> std::io::Result<Self> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Err(std::io::Error::other("stdin is not a terminal"));
        }
        let original = termios::tcgetattr(&stdin)?;
        let mut raw = original.clone();
        raw.make_raw();
        termios::tcsetattr(&stdin, OptionalActions::Now, &raw)?;
        Ok(Self { original })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // Nothing better to do if the terminal is gone already.
        let _ = termios::tcsetattr(std::io::stdin(), OptionalActions::Now, &self.original);
    }
}
