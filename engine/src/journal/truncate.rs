//! Cutting the journal back to a position: a mirror member that diverged from the new
//! primary rewinds its mirror journal (docs/design/mirroring.md, "Divergence on rejoin").
//!
//! Crash safety comes from a marker file, `TRUNCATE` in the journal directory, that names
//! the position to cut after. It is made durable before anything is cut and removed only
//! once every cut is durable; a journal that opens with the marker present finishes the
//! cut first. So after a power cut the journal has either its old tail (the marker never
//! became durable) or the new one (docs/design/journal.md, "Truncation").

use super::recovery::{current_segment, find_segments, Found};
use super::segment::{corrupt, io_error, read_step, ChunkReader, Step, HEADER_BYTES};
use super::writer::Journal;
use super::{Position, SegmentInfo};
use crate::error::{EngineError, Result};
use crate::vfs::{OpenMode, Vfs};
use std::path::{Path, PathBuf};

/// The marker's name; not a segment name, so listing segments ignores it.
const MARKER: &str = "TRUNCATE";
const MARKER_TMP: &str = "TRUNCATE.tmp";
const MARKER_MAGIC: [u8; 8] = *b"MLJTRNC\n";
/// magic (8) | position u64 LE | CRC32C u32 LE of the first 16 bytes.
const MARKER_BYTES: usize = 20;

fn encode_marker(to: Position) -> [u8; MARKER_BYTES] {
    let mut m = [0u8; MARKER_BYTES];
    m[0..8].copy_from_slice(&MARKER_MAGIC);
    m[8..16].copy_from_slice(&to.to_le_bytes());
    let crc = crc32c::crc32c(&m[..16]);
    m[16..20].copy_from_slice(&crc.to_le_bytes());
    m
}

fn decode_marker(path: &Path, m: &[u8]) -> Result<Position> {
    if m.len() != MARKER_BYTES || m[0..8] != MARKER_MAGIC {
        return Err(corrupt(path, 0, "not a journal truncation marker"));
    }
    let crc = u32::from_le_bytes(m[16..20].try_into().expect("4 bytes"));
    if crc != crc32c::crc32c(&m[..16]) {
        return Err(corrupt(path, 16, "truncation marker CRC32C mismatch"));
    }
    Ok(u64::from_le_bytes(m[8..16].try_into().expect("8 bytes")))
}

/// Writes the marker durably: temporary file, fdatasync, rename, directory fsync. Before
/// the rename is durable there is no marker; after it, a whole one.
fn write_marker(vfs: &dyn Vfs, dir: &Path, to: Position) -> Result<()> {
    let tmp = dir.join(MARKER_TMP);
    if vfs.exists(&tmp) {
        vfs.remove_file(&tmp).map_err(|e| io_error(&tmp, "removing", e))?;
    }
    let file = vfs.open(&tmp, OpenMode::CreateNew).map_err(|e| io_error(&tmp, "creating", e))?;
    file.write_all_at(0, &encode_marker(to)).map_err(|e| io_error(&tmp, "writing", e))?;
    file.sync_data().map_err(|e| io_error(&tmp, "syncing", e))?;
    let marker = dir.join(MARKER);
    vfs.rename(&tmp, &marker).map_err(|e| io_error(&marker, "renaming the truncation marker into", e))?;
    vfs.sync_dir(dir).map_err(|e| io_error(dir, "syncing the journal directory", e))
}

fn remove_marker(vfs: &dyn Vfs, dir: &Path) -> Result<()> {
    let marker = dir.join(MARKER);
    vfs.remove_file(&marker).map_err(|e| io_error(&marker, "removing", e))?;
    vfs.sync_dir(dir).map_err(|e| io_error(dir, "syncing the journal directory", e))
}

fn read_marker(vfs: &dyn Vfs, dir: &Path) -> Result<Option<Position>> {
    let marker = dir.join(MARKER);
    if !vfs.exists(&marker) {
        return Ok(None);
    }
    let file = vfs.open(&marker, OpenMode::ReadOnly).map_err(|e| io_error(&marker, "opening", e))?;
    let len = file.len().map_err(|e| io_error(&marker, "reading its length", e))?;
    let mut buf = vec![0u8; len.min(64) as usize];
    file.read_exact_at(0, &mut buf).map_err(|e| io_error(&marker, "reading", e))?;
    decode_marker(&marker, &buf).map(Some)
}

/// At open: finishes a truncation that a crash interrupted (the marker is durable, the
/// cuts may not be), and removes a marker's temporary file left by a crash before its
/// rename.
pub(super) fn finish_pending(vfs: &dyn Vfs, dir: &Path) -> Result<()> {
    let tmp = dir.join(MARKER_TMP);
    if vfs.exists(&tmp) {
        vfs.remove_file(&tmp).map_err(|e| io_error(&tmp, "removing", e))?;
    }
    let Some(to) = read_marker(vfs, dir)? else { return Ok(()) };
    tracing::warn!(dir = %dir.display(), to, "journal: finishing a truncation interrupted by a crash");
    let found = find_segments(vfs, dir, true)?;
    cut(vfs, dir, &found, to)?;
    remove_marker(vfs, dir)
}

/// Removes every record after `to`: segments that start after it (newest first), then the
/// tail of the segment that holds it. Each step is durable before the next; any
/// intermediate state is a valid, shorter journal, and the marker makes the next open
/// finish the job. Idempotent.
fn cut(vfs: &dyn Vfs, dir: &Path, found: &[Found], to: Position) -> Result<()> {
    let Some(oldest) = found.first() else { return Ok(()) };
    let oldest_first = oldest.scan.header.first_position;
    if to + 1 < oldest_first {
        return Err(corrupt(
            &oldest.path,
            24,
            format!("cannot cut after position {to}: the oldest record kept is {oldest_first}"),
        ));
    }
    // The segment holding record `to` (the oldest one when `to` precedes every record).
    let target = found.iter().rposition(|f| f.scan.header.first_position <= to).unwrap_or(0);
    for f in found[target + 1..].iter().rev() {
        vfs.remove_file(&f.path).map_err(|e| io_error(&f.path, "removing", e))?;
        vfs.sync_dir(dir).map_err(|e| io_error(dir, "syncing the journal directory", e))?;
        tracing::info!(path = %f.path.display(), "journal: removed by truncation");
    }
    let t = &found[target];
    let end = end_of(t, to)?;
    t.file.set_len(end).map_err(|e| io_error(&t.path, "cutting after the truncation point", e))?;
    t.file.sync_data().map_err(|e| io_error(&t.path, "syncing the cut", e))?;
    Ok(())
}

/// The offset just after record `to` in segment `f` (the header's end if the segment
/// starts after `to`).
fn end_of(f: &Found, to: Position) -> Result<u64> {
    let mut offset = HEADER_BYTES;
    if f.scan.header.first_position > to {
        return Ok(offset);
    }
    let mut reader = ChunkReader::new(f.file.clone(), &f.path)?;
    loop {
        match read_step(&mut reader, offset)? {
            Step::Record(view, size) => {
                offset += size;
                if view.position == to {
                    return Ok(offset);
                }
            }
            Step::End(at) | Step::Bad(at, _) => {
                return Err(corrupt(&f.path, at, format!("record {to}, the truncation point, is not in this segment")))
            }
        }
    }
}

impl Journal {
    /// Removes every record after `position`, durably, and continues from there: the last
    /// and durable positions become `position`, the epoch that of record `position`.
    /// Returns the removed segment files. Refused, with nothing changed, when `position` is
    /// beyond the last record or before the oldest one kept. Blocks appends while it runs;
    /// the caller makes sure nobody still waits on the records it cuts.
    pub fn truncate_after(&self, position: Position) -> Result<Vec<PathBuf>> {
        let mut io = self.io.lock();
        self.flush_locked(&mut io)?;
        let mut a = self.append.lock();
        if position > a.last_position {
            return Err(EngineError::Invalid(format!(
                "cannot truncate the journal after position {position}: it ends at {}",
                a.last_position
            )));
        }
        if position == a.last_position {
            return Ok(Vec::new());
        }
        let dir = self.options.dir.clone();
        let before: Vec<SegmentInfo> = self.segments();
        let oldest = before.first().map_or(1, |s| s.first_position);
        if position + 1 < oldest {
            return Err(EngineError::Invalid(format!(
                "cannot truncate the journal after position {position}: the oldest record kept is {oldest}"
            )));
        }
        let vfs = self.vfs.clone();
        let result = (|| -> Result<(super::writer::IoState, Vec<Found>)> {
            write_marker(vfs.as_ref(), &dir, position)?;
            let found = find_segments(vfs.as_ref(), &dir, true)?;
            cut(vfs.as_ref(), &dir, &found, position)?;
            remove_marker(vfs.as_ref(), &dir)?;
            let mut found = find_segments(vfs.as_ref(), &dir, true)?;
            let state = current_segment(vfs.as_ref(), &self.options, &mut found)?;
            Ok((state, found))
        })();
        let (mut state, found) = match result {
            Ok(r) => r,
            Err(e) => return Err(self.fail(e)),
        };
        if state.durable != position {
            return Err(self.fail(corrupt(
                &state.path,
                state.end,
                format!("after truncating after {position} the journal ends at {}", state.durable),
            )));
        }
        state.spare = std::mem::take(&mut io.spare);
        *io = state;
        let after: Vec<SegmentInfo> = found.iter().map(Found::info).collect();
        let removed =
            before.iter().filter(|s| !after.iter().any(|a| a.path == s.path)).map(|s| s.path.clone()).collect();
        *self.segments.lock() = after;
        // The seek points past the cut name records that are gone.
        *self.seek.lock() = super::writer::SeekIndex::default();
        a.last_position = position;
        self.epoch.store(found.last().map_or(0, |f| f.last_epoch), std::sync::atomic::Ordering::SeqCst);
        self.durable.send_replace(position);
        tracing::warn!(dir = %dir.display(), position, "journal: truncated");
        Ok(removed)
    }
}
