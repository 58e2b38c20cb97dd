//! A validation problem: what is wrong, where (file, line, column) and what to do.
//! Problems are collected, never thrown one at a time, so a person fixes them all at once.

use std::fmt;

/// 1-based line and column in the manifest as written (before template rendering, the
/// renderer keeps lines in place: see `template`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub pos: Pos,
    pub message: String,
    pub hint: Option<String>,
}

impl Problem {
    pub fn new(pos: Pos, message: impl Into<String>) -> Problem {
        Problem { pos, message: message.into(), hint: None }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Problem {
        self.hint = Some(hint.into());
        self
    }
}

/// Every problem of one manifest, in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problems {
    pub file: String,
    pub list: Vec<Problem>,
}

impl Problems {
    pub fn sorted(file: &str, mut list: Vec<Problem>) -> Problems {
        list.sort_by(|a, b| a.pos.cmp(&b.pos).then_with(|| a.message.cmp(&b.message)));
        list.dedup();
        Problems { file: file.to_string(), list }
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.list {
            writeln!(f, "{}:{}:{}: error: {}", self.file, p.pos.line, p.pos.column, p.message)?;
            if let Some(h) = &p.hint {
                writeln!(f, "  hint: {h}")?;
            }
        }
        write!(
            f,
            "{} problem{} found; nothing was changed",
            self.list.len(),
            if self.list.len() == 1 { "" } else { "s" }
        )
    }
}
