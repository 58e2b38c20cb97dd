//! Metadata stored inside each database file (table `meta`), so that a copied file carries
//! its identity, its journal position and its mirror attributes with it.
//!
//! On disk every field is one row keyed by its name; integers are fixed-width little-endian.

/// Newest database-file format this engine reads and writes. Bump it (and the version log
/// in docs/design/journal.md) on any change to the tables or the key encoding.
///
/// 2: every value carries a checksum (`dbfile::seal`). Format 1 files (bare values) are
/// upgraded in place when mounted (`DbFile::upgrade`).
pub const FORMAT_VERSION: u32 = 2;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DbMeta {
    pub name: String,
    /// 32 hex digits, fixed at creation, kept by copies.
    pub guid: String,
    pub format_version: u32,
    /// GUID of the instance whose journal `journal_position` refers to.
    pub journal_instance: String,
    /// Every journal record at or below this position is reflected in the file.
    pub journal_position: u64,
    /// Recovery must read the journal from here: at most `journal_position + 1`, earlier when
    /// a transaction was open at the checkpoint (its old values are needed to roll it back).
    pub recovery_from: u64,
    /// The mirror this database belongs to; empty when not mirrored. A mirrored database
    /// follows the mirror journal (`journal_instance` is then `mirror:<NAME>`).
    pub mirror_name: String,
    /// The database's name in the mirror (the same on every member).
    pub mirror_db_name: String,
    /// This member applies the mirror journal to the database. Cleared when a copy from
    /// another member is mounted: the copy needs activation (and catch-up) first.
    pub activated: bool,
    pub failover_eligible: bool,
    /// For a mirrored database: the instance whose local journal `local_position` refers to.
    /// A read-write reporting member writes mirrored databases through its local journal,
    /// so such a database follows both journals. Empty when absent (older files).
    pub local_instance: String,
    /// Every local journal record at or below this position is in the file (mirrored
    /// databases only; 0 when absent).
    pub local_position: u64,
    /// Recovery reads the local journal from here for this database (mirrored databases
    /// only; 0 when absent).
    pub local_recovery_from: u64,
}

impl DbMeta {
    pub fn new(name: &str, guid: String, journal_instance: &str, journal_position: u64) -> DbMeta {
        DbMeta {
            name: name.to_string(),
            guid,
            format_version: FORMAT_VERSION,
            journal_instance: journal_instance.to_string(),
            journal_position,
            recovery_from: journal_position + 1,
            mirror_name: String::new(),
            mirror_db_name: String::new(),
            activated: false,
            failover_eligible: true,
            local_instance: String::new(),
            local_position: 0,
            local_recovery_from: 0,
        }
    }

    /// Whether the database belongs to a mirror (and so follows the mirror journal).
    pub fn is_mirrored(&self) -> bool {
        !self.mirror_name.is_empty()
    }

    pub(crate) fn to_rows(&self) -> Vec<(&'static str, Vec<u8>)> {
        vec![
            ("name", self.name.as_bytes().to_vec()),
            ("guid", self.guid.as_bytes().to_vec()),
            ("format_version", self.format_version.to_le_bytes().to_vec()),
            ("journal_instance", self.journal_instance.as_bytes().to_vec()),
            ("journal_position", self.journal_position.to_le_bytes().to_vec()),
            ("recovery_from", self.recovery_from.to_le_bytes().to_vec()),
            ("mirror_name", self.mirror_name.as_bytes().to_vec()),
            ("mirror_db_name", self.mirror_db_name.as_bytes().to_vec()),
            ("activated", vec![self.activated as u8]),
            ("failover_eligible", vec![self.failover_eligible as u8]),
            ("local_instance", self.local_instance.as_bytes().to_vec()),
            ("local_position", self.local_position.to_le_bytes().to_vec()),
            ("local_recovery_from", self.local_recovery_from.to_le_bytes().to_vec()),
        ]
    }

    /// Rebuilds the metadata from rows; `Err` names the missing or malformed field.
    pub(crate) fn from_rows(get: impl Fn(&str) -> Option<Vec<u8>>) -> Result<DbMeta, String> {
        let text = |k: &str| -> Result<String, String> {
            let v = get(k).ok_or_else(|| format!("metadata field {k} is missing"))?;
            String::from_utf8(v).map_err(|_| format!("metadata field {k} is not UTF-8"))
        };
        let u64_of = |k: &str| -> Result<u64, String> {
            let v = get(k).ok_or_else(|| format!("metadata field {k} is missing"))?;
            Ok(u64::from_le_bytes(v.try_into().map_err(|_| format!("metadata field {k} is not 8 bytes"))?))
        };
        let flag = |k: &str| -> Result<bool, String> {
            match get(k).as_deref() {
                Some([0]) => Ok(false),
                Some([1]) => Ok(true),
                _ => Err(format!("metadata field {k} is missing or not a flag")),
            }
        };
        let version = get("format_version").ok_or("metadata field format_version is missing")?;
        let format_version =
            u32::from_le_bytes(version.try_into().map_err(|_| "metadata field format_version is not 4 bytes")?);
        Ok(DbMeta {
            name: text("name")?,
            guid: text("guid")?,
            format_version,
            journal_instance: text("journal_instance")?,
            journal_position: u64_of("journal_position")?,
            recovery_from: u64_of("recovery_from")?,
            mirror_name: text("mirror_name")?,
            mirror_db_name: text("mirror_db_name")?,
            activated: flag("activated")?,
            failover_eligible: flag("failover_eligible")?,
            // Rows added after format 1 shipped: absent in older files, which were never
            // written through a mirror member's local journal.
            local_instance: if get("local_instance").is_some() { text("local_instance")? } else { String::new() },
            local_position: if get("local_position").is_some() { u64_of("local_position")? } else { 0 },
            local_recovery_from: if get("local_recovery_from").is_some() { u64_of("local_recovery_from")? } else { 0 },
        })
    }
}

/// A new 128-bit identifier as 32 hex digits. The standard library's randomly keyed hasher
/// is the entropy source (no extra dependency); time and a counter keep values distinct.
pub fn new_guid() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let mut halves = [0u64; 2];
    for half in &mut halves {
        let mut h = RandomState::new().build_hasher();
        h.write_u128(nanos);
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_u32(std::process::id());
        *half = h.finish();
    }
    format!("{:016x}{:016x}", halves[0], halves[1])
}
