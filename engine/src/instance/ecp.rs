//! The instance's side of serving ECP requests (the data-server role): the database a
//! request names, and the outcome of a request whose reply was lost (docs/design/ecp.md).

use super::session::JournalId;
use super::Instance;
use crate::error::{EngineError, Result};
use crate::journal::RecordBody;

/// How many journal records an outcome lookup reads at most: an application server asks
/// from the position its last reply carried, so a lookup that needs more has been
/// disconnected for very long, and its request's outcome is reported unknown.
pub const OUTCOME_SCAN_LIMIT: u64 = 4_000_000;

/// Where a request that was applied left its records, and what its reply said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    pub journal: JournalId,
    /// The position of the request's last record.
    pub position: u64,
    pub result: Vec<u8>,
}

/// Which request to look for.
#[derive(Clone, Copy, Debug)]
pub struct RequestId<'a> {
    pub app: &'a str,
    pub incarnation: u64,
    pub channel: u64,
    pub seq: u64,
}

impl Instance {
    /// The database a data server's ECP request names: by name, or by its directory.
    pub fn ecp_database(&self, path: &str) -> Result<String> {
        let config = self.config();
        let upper = path.to_ascii_uppercase();
        if config.databases.contains_key(&upper) {
            return Ok(upper);
        }
        let wanted = self.data_dir().root().join(path);
        config
            .databases
            .iter()
            .find(|(_, d)| self.data_dir().root().join(&d.directory) == wanted)
            .map(|(name, _)| name.clone())
            .ok_or(EngineError::NoDatabase(path.to_string()))
    }

    /// Whether request `id` was applied here: its origin record and every record of its
    /// change are in a journal at or after `from` (per journal). Flushes first, so a
    /// change still in the journal buffer is found.
    pub fn ecp_outcome(&self, id: RequestId<'_>, from: [(JournalId, u64); 2]) -> Result<Option<Applied>> {
        for (journal, from) in from {
            if journal == JournalId::Mirror && self.mirror_journal().is_none() {
                continue;
            }
            let j = self.journal_of(journal);
            let end = j.flush()?;
            if from > end {
                continue;
            }
            if end - from > OUTCOME_SCAN_LIMIT {
                return Err(EngineError::Invalid(format!(
                    "the outcome of ECP request {} of {} is unknown: it would take reading {} journal records (more than {OUTCOME_SCAN_LIMIT})",
                    id.seq,
                    id.app,
                    end - from
                )));
            }
            for record in j.read_from(from.max(1))? {
                let record = record?;
                let RecordBody::EcpOrigin(o) = &record.body else { continue };
                if o.app == id.app && o.incarnation == id.incarnation && o.channel == id.channel && o.seq == id.seq {
                    let last = record.position + u64::from(o.records);
                    if last <= end {
                        return Ok(Some(Applied { journal, position: last, result: o.result.clone() }));
                    }
                    return Ok(None);
                }
            }
        }
        Ok(None)
    }
}
