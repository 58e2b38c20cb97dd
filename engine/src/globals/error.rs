use thiserror::Error;

/// Why a global reference, subscript or value was refused. Each variant maps to one
/// engine error name (`SYNTAX`, `SUBSCRIPT`, `MAXSTRING`) through [`GlobalsError::code`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GlobalsError {
    #[error("{reason} at column {column} of {input:?}")]
    Syntax { input: String, column: usize, reason: String },
    #[error("empty string \"\" is not a valid subscript (subscript {index})")]
    EmptySubscript { index: usize },
    #[error("global name {name:?} is longer than {max} characters")]
    NameTooLong { name: String, max: usize },
    #[error("global name {name:?} is not valid: it must start with a letter or %, then letters, digits or dots")]
    BadName { name: String },
    #[error("{count} subscripts is more than the limit of {max}")]
    TooManySubscripts { count: usize, max: usize },
    #[error("encoded key is {len} bytes, more than the limit of {max}")]
    KeyTooLong { len: usize, max: usize },
    #[error("value is {len} bytes, more than the limit of {max}")]
    ValueTooLong { len: usize, max: usize },
    #[error("stored key is malformed at byte {offset}")]
    BadKey { offset: usize },
}

impl GlobalsError {
    /// The engine error name shown to clients (`-SUBSCRIPT ...` on RESP, `<SUBSCRIPT>` in
    /// the terminal).
    pub fn code(&self) -> &'static str {
        match self {
            GlobalsError::Syntax { .. } | GlobalsError::BadName { .. } => "SYNTAX",
            GlobalsError::EmptySubscript { .. }
            | GlobalsError::TooManySubscripts { .. }
            | GlobalsError::KeyTooLong { .. }
            | GlobalsError::NameTooLong { .. } => "SUBSCRIPT",
            GlobalsError::ValueTooLong { .. } => "MAXSTRING",
            GlobalsError::BadKey { .. } => "DATABASE",
        }
    }
}
