use thiserror::Error;

/// Why a global reference, subscript or value was refused. Each variant maps to one
/// engine error name (`SYNTAX`, `SUBSCRIPT`, `MAXSTRING`) through [`GlobalsError::code`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GlobalsError {
    #[error("{reason} at column {column} of {}", excerpt(input))]
    Syntax { input: String, column: usize, reason: String },
    #[error("empty string \"\" is not a valid subscript (subscript {index})")]
    EmptySubscript { index: usize },
    #[error("global name {} is longer than {max} characters", excerpt(name))]
    NameTooLong { name: String, max: usize },
    #[error(
        "global name {} is not valid: it must start with a letter or %, then letters, digits or dots",
        excerpt(name)
    )]
    BadName { name: String },
    #[error("{count} subscripts is more than the limit of {max}")]
    TooManySubscripts { count: usize, max: usize },
    #[error("encoded key is {len} bytes, more than the limit of {max}")]
    KeyTooLong { len: usize, max: usize },
    #[error("value is {len} bytes, more than the limit of {max}")]
    ValueTooLong { len: usize, max: usize },
    #[error("stored key is malformed at byte {offset}")]
    BadKey { offset: usize },
    #[error("number {} is beyond the engine's range (36 significant digits times 10^300 at most)", excerpt(literal))]
    MaxNumber { literal: String },
}

/// Most bytes of client input an error message repeats.
pub const MAX_ECHO_BYTES: usize = 128;

/// Client input quoted for an error message: whole when short, else its first
/// [`MAX_ECHO_BYTES`] bytes and how long it was (a 3 MiB key is not sent back).
pub fn excerpt(input: &str) -> String {
    if input.len() <= MAX_ECHO_BYTES {
        return format!("{input:?}");
    }
    let mut end = MAX_ECHO_BYTES;
    while !input.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}... ({} bytes)", &input[..end], input.len())
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
            GlobalsError::MaxNumber { .. } => "MAXNUMBER",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_quote_at_most_a_bounded_excerpt_of_the_input() {
        assert_eq!(excerpt("abc"), "\"abc\"");
        let long = format!("é{}", "x".repeat(3 << 20));
        let e = GlobalsError::Syntax { input: long.clone(), column: 1, reason: "bad".into() }.to_string();
        assert!(e.len() < 2 * MAX_ECHO_BYTES, "{} bytes", e.len());
        assert!(e.ends_with(&format!("... ({} bytes)", long.len())), "{e}");
        assert!(GlobalsError::BadName { name: long.clone() }.to_string().len() < 3 * MAX_ECHO_BYTES);
        assert!(GlobalsError::NameTooLong { name: long, max: 31 }.to_string().len() < 2 * MAX_ECHO_BYTES);
    }
}
