//! The keyspace of a namespace as a flat, ordered list of nodes with values: what Redis
//! tools walk with SCAN, KEYS and DBSIZE.

use super::session::Session;
use super::Instance;
use crate::error::Result;
use crate::globals::key::SUBTREE_END;
use std::ops::Bound;

/// Greater than every encoded key: global names are ASCII, so no key starts with 0xFF.
const KEYSPACE_END: &[u8] = &[SUBTREE_END];

impl Instance {
    /// At most `limit` nodes with a value in the session's namespace, in collation order,
    /// strictly after the encoded key `after` (from the first when `None`): each encoded
    /// key with its value's length.
    pub fn scan_keys(&self, s: &Session, after: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, usize)>> {
        let lo = match after {
            // The smallest key greater than `after`.
            Some(a) => [a, &[0]].concat(),
            None => Vec::new(),
        };
        self.scan_range(s, &lo, KEYSPACE_END, false, limit)
    }

    /// Nodes with a value in `[lo, hi)` of the session's view, at most `limit`, from the
    /// top or (`reverse`) the bottom: keys and the lengths of their values. Remote
    /// databases are asked for their part.
    pub fn scan_range(
        &self,
        s: &Session,
        lo: &[u8],
        hi: &[u8],
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, usize)>> {
        let ns = self.view(s)?;
        let mut pieces = ns.routing.pieces(lo, hi);
        if reverse {
            pieces.reverse();
        }
        let mut out = Vec::new();
        for (plo, phi, db) in pieces {
            if out.len() >= limit {
                break;
            }
            s.rights.check_database(db, false)?;
            if let Some(r) = self.remote_database(db) {
                out.extend(self.remote_scan(s, &r, &plo, &phi, reverse, limit - out.len())?);
                continue;
            }
            let db = self.database(db)?;
            let found = db.scan(Bound::Included(&plo), Bound::Excluded(&phi), reverse, limit - out.len())?;
            out.extend(found.into_iter().map(|(k, v)| (k, v.len())));
        }
        Ok(out)
    }

    /// The mirrored databases the session's namespace maps globals to.
    pub fn mirrored_databases_of(&self, s: &Session) -> Result<Vec<String>> {
        let ns = self.view(s)?;
        let mut out = Vec::new();
        for name in ns.routing.databases() {
            if let Ok(db) = self.database(name) {
                if db.with_meta(|m| !m.mirror_name.is_empty()) {
                    out.push(name.to_string());
                }
            }
        }
        Ok(out)
    }
}
