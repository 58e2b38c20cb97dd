//! The `ECP` command family on the superserver port: request names and reply shapes.
//!
//! ```text
//! ECP ATTACH app incarnation channel mirror(0|1)
//!     -> [role, epoch, member, primary, [[name, superserver]...], local_end, mirror_end]
//! ECP OUTCOME seq local_from mirror_from      -> nil | [journal, position, result]
//! ECP GET db key                              -> bulk | nil
//! ECP SCAN db lo hi reverse(0|1) limit        -> [key, value_length, ...]
//! ECP SET seq db key value                    -> [journal, position]
//! ECP ZKILL seq db key                        -> [journal, position] | nil (no value)
//! ECP KILL seq db key lo hi                   -> [journal, position]
//! ECP INCR seq db key by                      -> [journal, position, new value]
//! ECP CAS seq db key expected new             -> [1, journal, position] | [0, current]
//! ECP TSTART                                  -> level
//! ECP TCOMMIT seq | ECP TROLLBACK             -> [journal, position]
//! ```
//! Keys are encoded global references (`globals::key`), binary-safe. In CAS, a value
//! argument is `=` followed by the bytes, or `-` for "no value".

/// `role` in the ATTACH reply.
pub const ROLE_PRIMARY: &str = "primary";
pub const ROLE_TRANSITION: &str = "transition";
pub const ROLE_MEMBER: &str = "member";
pub const ROLE_STANDALONE: &str = "standalone";

/// The error code a data server answers when a mirror connection reached a member that
/// is not (or no longer) the open primary: the application server looks for the primary.
pub const MOVED: &str = "ECPMOVED";
/// The error code of a request on a connection another ATTACH of its channel replaced.
pub const REPLACED: &str = "ECPREPLACED";

/// Journal numbers in replies.
pub const JOURNAL_LOCAL: i64 = 0;
pub const JOURNAL_MIRROR: i64 = 1;

pub fn journal_number(j: crate::instance::JournalId) -> i64 {
    match j {
        crate::instance::JournalId::Local => JOURNAL_LOCAL,
        crate::instance::JournalId::Mirror => JOURNAL_MIRROR,
    }
}

/// A CAS value argument: `=bytes` or `-`.
pub fn encode_optional(v: Option<&[u8]>) -> Vec<u8> {
    match v {
        Some(v) => [b"=".as_slice(), v].concat(),
        None => b"-".to_vec(),
    }
}

pub fn decode_optional(arg: &[u8]) -> Option<Option<&[u8]>> {
    match arg.split_first() {
        Some((b'=', rest)) => Some(Some(rest)),
        Some((b'-', [])) => Some(None),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_values_round_trip() {
        for v in [None, Some(&b""[..]), Some(&b"=x-"[..])] {
            assert_eq!(decode_optional(&encode_optional(v)), Some(v));
        }
        assert_eq!(decode_optional(b""), None);
        assert_eq!(decode_optional(b"-x"), None);
    }
}
