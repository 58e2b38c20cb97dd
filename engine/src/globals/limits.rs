//! Hard limits on globals. Every limit is checked where input enters the engine
//! (reference parsing, SET), so storage and the journal never see an oversized item.
//! The numbers follow the reference product where users know them (31-character names,
//! 511-byte keys, 3,641,144-byte strings).

/// Longest global name, in characters (all ASCII).
pub const MAX_NAME_LEN: usize = 31;
/// Most subscripts in one reference.
pub const MAX_SUBSCRIPTS: usize = 63;
/// Longest encoded key (name plus subscripts), in bytes.
pub const MAX_KEY_BYTES: usize = 511;
/// Longest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 3_641_144;
