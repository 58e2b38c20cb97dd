//! `engine journal list|dump`: read-only views of journal files, usable while the engine
//! runs or is down.

use crate::globals::key;
use crate::globals::reference::{format, format_value};
use crate::instance::datadir::DataDir;
use crate::journal::{dump_segment, list_segments, OldValue, Record, RecordBody};
use crate::vfs::real::RealVfs;
use anyhow::Result;
use std::io::Write;
use std::path::Path;

pub fn list(dir: &DataDir, out: &mut dyn Write) -> Result<()> {
    let segments = list_segments(&RealVfs::new(), &dir.journal_dir())?;
    writeln!(out, "{:<14} {:>8} {:>14} {:>14} {:>10} {:>12}", "FILE", "SEQUENCE", "FIRST", "LAST", "RECORDS", "BYTES")?;
    for s in segments {
        let name = s.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let last = s.last_position.map_or("-".to_string(), |p| p.to_string());
        writeln!(
            out,
            "{name:<14} {:>8} {:>14} {last:>14} {:>10} {:>12}",
            s.sequence, s.first_position, s.records, s.bytes
        )?;
    }
    Ok(())
}

pub fn dump(dir: &DataDir, file: &Path, out: &mut dyn Write) -> Result<()> {
    let path = if file.exists() { file.to_path_buf() } else { dir.journal_dir().join(file) };
    for (offset, record) in dump_segment(&RealVfs::new(), &path)? {
        writeln!(out, "{}", describe(offset, &record))?;
    }
    Ok(())
}

/// One line per record: offset, position, epoch, transaction, kind and content.
pub fn describe(offset: u64, r: &Record) -> String {
    let reference = |k: &[u8]| key::decode(k).map(|g| format(&g)).unwrap_or_else(|e| format!("<bad key: {e}>"));
    let old = |o: &OldValue| match o {
        OldValue::NotRecorded => String::new(),
        OldValue::Absent => " (old: undefined)".to_string(),
        OldValue::Present(v) => format!(" (old: {})", format_value(v)),
    };
    let body = match &r.body {
        RecordBody::Set { db, key, value, old: o } => {
            format!("SET {db} {}={}{}", reference(key), format_value(value), old(o))
        }
        RecordBody::Kill { db, key, old } => {
            format!(
                "KILL {db} {}{}",
                reference(key),
                old.as_ref().map(|o| format!(" (old: {} nodes)", o.len())).unwrap_or_default()
            )
        }
        RecordBody::ZKill { db, key, old: o } => format!("ZKILL {db} {}{}", reference(key), old(o)),
        RecordBody::TStart => "TSTART".into(),
        RecordBody::TCommit => "TCOMMIT".into(),
        RecordBody::TRollback => "TROLLBACK".into(),
        RecordBody::Sync => "SYNC".into(),
        RecordBody::MirrorNewDatabase { db } => format!("MIRROR NEW DATABASE {db}"),
        RecordBody::EcpOrigin(o) => format!(
            "ECP ORIGIN {} incarnation={} channel={} seq={} records={}",
            o.app, o.incarnation, o.channel, o.seq, o.records
        ),
    };
    let txn = if r.txn == 0 { String::new() } else { format!(" txn={}", r.txn) };
    format!("offset={offset} position={} epoch={}{txn} {body}", r.position, r.epoch)
}
