//! Globals: references, subscripts, collation and key encoding. Pure functions, no I/O.

pub mod error;
pub mod key;
pub mod limits;
pub mod number;
pub mod reference;
pub mod subscript;

pub use error::GlobalsError;
pub use number::Number;
pub use subscript::{GlobalRef, Subscript};
