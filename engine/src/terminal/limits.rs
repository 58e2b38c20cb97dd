//! Bounds on what one line can ask of the terminal.

/// Longest accepted input line, in bytes (longer lines are refused with `<SYNTAX>`).
pub const MAX_LINE_BYTES: usize = 32_767;
/// Deepest nesting of parentheses, function calls and unary operators in one expression.
pub const MAX_NESTING: usize = 64;
/// Most local variable nodes one session may hold (`<STORE>` beyond).
pub const MAX_LOCAL_NODES: usize = 1_000_000;
/// Largest exponent `**` computes exactly (by repeated multiplication).
pub const MAX_INTEGER_POWER: i64 = 4096;
/// Widest `$JUSTIFY` and `?n` column.
pub const MAX_WIDTH: i64 = 32_767;
