//! The terminal: a `USER>` prompt reading a documented subset of ObjectScript
//! (docs/terminal.md), the way users know it from `iris session`.
//!
//! Invariant: **the terminal does no I/O of its own except through its [`Backend`], its
//! [`Clock`] and the reader and writer it is given**, so a whole session runs in tests
//! against [`MemoryBackend`] with a [`FixedClock`] and gives the same transcript every time.
//!
//! A line is tokenized ([`lexer`]), parsed into commands ([`parser`], [`ast`]) and run
//! ([`exec`], [`eval`], [`functions`], [`zwrite`]); locals live in a [`tree::Tree`] of the
//! same shape as a global.

mod ast;
pub mod backend;
pub mod datetime;
mod error;
mod eval;
mod exec;
mod functions;
pub mod host;
mod lexer;
pub mod limits;
pub mod memory_backend;
mod parser;
mod store;
mod tree;
mod value;
mod zwrite;

#[cfg(test)]
mod tests;

pub use backend::{Backend, BackendError};
pub use datetime::{Clock, FixedClock, SystemClock};
pub use error::TermError;
pub use memory_backend::MemoryBackend;

use exec::Ctl;
use limits::MAX_LINE_BYTES;
use std::io::{BufRead, Read, Write};
use tree::Tree;

/// `$ZVERSION`.
pub fn version() -> String {
    format!("Mirrorlab Engine {} (Rust)", env!("CARGO_PKG_VERSION"))
}

/// What the session does after a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Halt,
}

/// Reads lines typed on a terminal with editing and history (the `engine session`
/// binary's is rustyline); tests give scripted ones.
pub trait LineEditor {
    /// Shows `prompt` and returns the line typed, without its newline; `None` when the
    /// input ended (Ctrl-D, or the terminal went away).
    fn read_line(&mut self, prompt: &str) -> Option<String>;
}

pub struct Terminal<B: Backend> {
    backend: B,
    locals: Tree,
    clock: Box<dyn Clock>,
    hostname: String,
    /// The current namespace, as last reported by the backend.
    namespace: String,
    /// `$X`, `$Y`: the output column and line.
    column: u32,
    row: u32,
    /// `$TEST`.
    test: bool,
    tlevel: u32,
    interactive: bool,
}

impl<B: Backend> Terminal<B> {
    /// A terminal on the system clock and the machine's host name.
    pub fn new(backend: B) -> Terminal<B> {
        let mut t = Terminal {
            backend,
            locals: Tree::new(),
            clock: Box::new(SystemClock),
            hostname: host::local_host_name(),
            namespace: String::new(),
            column: 0,
            row: 0,
            test: false,
            tlevel: 0,
            interactive: false,
        };
        t.refresh_namespace();
        t
    }

    pub fn with_clock(mut self, clock: Box<dyn Clock>) -> Terminal<B> {
        self.clock = clock;
        self
    }

    pub fn with_hostname(mut self, hostname: impl Into<String>) -> Terminal<B> {
        self.hostname = hostname.into();
        self
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    fn refresh_namespace(&mut self) {
        if let Ok(ns) = self.backend.namespace() {
            self.namespace = ns;
        }
    }

    /// The prompt, `USER>`.
    pub fn prompt(&self) -> String {
        format!("{}>", self.namespace)
    }

    /// Writes output, keeping `$X` and `$Y`.
    fn put(&mut self, out: &mut dyn Write, bytes: &[u8]) -> Result<(), TermError> {
        out.write_all(bytes).map_err(TermError::device)?;
        for &b in bytes {
            match b {
                b'\n' => {
                    self.column = 0;
                    self.row = self.row.wrapping_add(1);
                }
                b'\r' => self.column = 0,
                _ if b & 0xC0 != 0x80 => self.column = self.column.saturating_add(1),
                _ => {}
            }
        }
        Ok(())
    }

    /// Starts a new output line unless the cursor is already at column 0.
    fn fresh_line(&mut self, out: &mut dyn Write) -> Result<(), TermError> {
        if self.column != 0 {
            self.put(out, b"\n")?;
        }
        Ok(())
    }

    /// Runs one line. Errors are printed as `<CODE> detail` on a line of their own and
    /// the session continues; only HALT (or a failed output device) ends it.
    pub fn execute_line(&mut self, line: &str, out: &mut dyn Write) -> Flow {
        let result = if line.len() > MAX_LINE_BYTES {
            Err(TermError::new("SYNTAX", format!("line is longer than {MAX_LINE_BYTES} bytes")))
        } else {
            parser::parse_line(line).and_then(|cmds| self.exec(&cmds, out))
        };
        match result {
            Ok(Ctl::Halt) => Flow::Halt,
            Ok(Ctl::Done | Ctl::Quit) => Flow::Continue,
            Err(e) if e.fatal => Flow::Halt,
            Err(e) => {
                let printed = self.fresh_line(out).and_then(|_| self.put(out, format!("{e}\n").as_bytes()));
                if printed.is_err() {
                    Flow::Halt
                } else {
                    Flow::Continue
                }
            }
        }
    }

    /// The read-eval loop: prints the prompt (on a fresh line), reads a line, runs it,
    /// until HALT or the end of input.
    ///
    /// `interactive`: a person typed the line and the terminal echoed it, so output starts
    /// at column 0. Piped input is not echoed: output follows the prompt on the same line,
    /// exactly as the bytes are written (`USER>1`), and a line with no output leaves the
    /// bare prompt on its line.
    /// Runs on a line editor (a terminal with line editing and history): the editor
    /// shows the prompt and returns each line typed, until it says the input ended.
    pub fn run_edited(&mut self, editor: &mut dyn LineEditor, out: &mut dyn Write) {
        self.interactive = true;
        loop {
            self.refresh_namespace();
            let prompt = self.prompt();
            if self.fresh_line(out).is_err() || out.flush().is_err() {
                return;
            }
            let Some(line) = editor.read_line(&prompt) else { break };
            // The editor echoed the line and its newline.
            self.column = 0;
            if self.execute_line(&line, out) == Flow::Halt {
                break;
            }
        }
        let _ = self.fresh_line(out);
        let _ = out.flush();
    }

    pub fn run(&mut self, mut input: impl BufRead, out: &mut dyn Write, interactive: bool) {
        self.interactive = interactive;
        let mut buf = Vec::new();
        loop {
            self.refresh_namespace();
            let prompt = self.prompt();
            if self.fresh_line(out).and_then(|_| self.put(out, prompt.as_bytes())).is_err() || out.flush().is_err() {
                return;
            }
            buf.clear();
            let read = input.by_ref().take(MAX_LINE_BYTES as u64 + 1).read_until(b'\n', &mut buf);
            match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if buf.len() > MAX_LINE_BYTES && buf.last() != Some(&b'\n') {
                // Drop the rest of the over-long line; execute_line reports it.
                let mut rest = Vec::new();
                if input.read_until(b'\n', &mut rest).is_err() {
                    break;
                }
            }
            if interactive {
                self.column = 0;
            }
            let text = String::from_utf8_lossy(&buf);
            let line = text.trim_end_matches(['\n', '\r']);
            if self.execute_line(line, out) == Flow::Halt {
                break;
            }
        }
        let _ = self.fresh_line(out);
        let _ = out.flush();
    }
}
