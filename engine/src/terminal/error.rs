//! The terminal's error: an error name printed in angle brackets and a short detail,
//! `<UNDEFINED> *x`, `<PROTECT> ^x(1),/db/`. One failing line never ends the session.

use super::backend::BackendError;
use crate::globals::GlobalsError;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TermError {
    /// `SYNTAX`, `UNDEFINED`, `DIVIDE`, `PROTECT`, `SUBSCRIPT`, `FUNCTION`, ...
    pub code: String,
    pub detail: String,
    /// The output device failed: the session cannot go on.
    pub fatal: bool,
}

impl TermError {
    pub fn new(code: impl Into<String>, detail: impl Into<String>) -> TermError {
        TermError { code: code.into(), detail: detail.into(), fatal: false }
    }

    /// A syntax error at byte offset `pos` of the line (printed as a 1-based column).
    pub fn syntax(pos: usize, reason: impl Into<String>) -> TermError {
        TermError::new("SYNTAX", format!("{} (column {})", reason.into(), pos + 1))
    }

    pub fn function(detail: impl Into<String>) -> TermError {
        TermError::new("FUNCTION", detail)
    }

    pub fn device(e: std::io::Error) -> TermError {
        TermError { code: "DEVICE".into(), detail: e.to_string(), fatal: true }
    }
}

impl fmt::Display for TermError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.detail.is_empty() {
            write!(f, "<{}>", self.code)
        } else {
            write!(f, "<{}> {}", self.code, self.detail)
        }
    }
}

impl std::error::Error for TermError {}

impl From<BackendError> for TermError {
    fn from(e: BackendError) -> TermError {
        TermError::new(e.code, e.message)
    }
}

impl From<GlobalsError> for TermError {
    fn from(e: GlobalsError) -> TermError {
        TermError::new(e.code(), e.to_string())
    }
}
