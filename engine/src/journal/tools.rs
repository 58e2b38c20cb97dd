//! Offline tools for `engine journal list|dump`: read-only, never truncate, usable while
//! the engine is down.

use super::record::Record;
use super::recovery::{find_segments, Found};
use super::segment::{io_error, scan_segment, ChunkReader};
use super::SegmentInfo;
use crate::error::Result;
use crate::vfs::{OpenMode, Vfs};
use std::path::Path;

/// Every segment of a journal directory, validated, in sequence order. A torn tail of the
/// last segment is reported with a warning and left in place.
pub fn list_segments(vfs: &dyn Vfs, dir: &Path) -> Result<Vec<SegmentInfo>> {
    let found = find_segments(vfs, dir, false)?;
    if let Some(Found { path, scan: super::segment::Scan { torn: Some((offset, detail)), .. }, .. }) = found.last() {
        tracing::warn!(path = %path.display(), offset, "journal: torn tail ({detail}); the engine cuts it at its next start");
    }
    Ok(found.iter().map(Found::info).collect())
}

/// Every record of one segment file with its offset. Stops with a `CorruptJournal` error
/// at the first bad record (including a torn tail).
pub fn dump_segment(vfs: &dyn Vfs, path: &Path) -> Result<Vec<(u64, Record)>> {
    let file = vfs.open(path, OpenMode::ReadOnly).map_err(|e| io_error(path, "opening", e))?;
    let mut reader = ChunkReader::new(file, path)?;
    let mut out = Vec::new();
    scan_segment(&mut reader, path, false, &mut |offset, view| {
        out.push((offset, view.to_record()));
        Ok(())
    })?;
    Ok(out)
}
