//! Segment files: the fixed header, file names, and the validating scan used at open and
//! by the offline tools (see docs/design/journal.md).

use super::record::{
    check_frame, decode_view, Frame, Position, RecordView, FIXED_BODY_BYTES, FRAME_HEADER_BYTES, MAX_RECORD_BYTES,
};
use crate::error::{EngineError, Result};
use crate::vfs::VfsFile;
use std::path::{Path, PathBuf};

pub const MAGIC: [u8; 8] = *b"MLJRNL\r\n";
/// The newest segment format this engine writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Size of the segment header; records start right after it.
pub const HEADER_BYTES: u64 = 64;
const HEADER_CRC_AT: usize = 60;
/// Bytes read from a segment at a time.
const READ_CHUNK: usize = 1 << 20;

/// The fixed header at the start of every segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    pub version: u32,
    pub sequence: u64,
    pub first_position: Position,
    pub epoch: u64,
    pub created_ms: u64,
}

impl SegmentHeader {
    pub fn encode(&self) -> [u8; HEADER_BYTES as usize] {
        let mut h = [0u8; HEADER_BYTES as usize];
        h[0..8].copy_from_slice(&MAGIC);
        h[8..12].copy_from_slice(&self.version.to_le_bytes());
        h[12..16].copy_from_slice(&(HEADER_BYTES as u32).to_le_bytes());
        h[16..24].copy_from_slice(&self.sequence.to_le_bytes());
        h[24..32].copy_from_slice(&self.first_position.to_le_bytes());
        h[32..40].copy_from_slice(&self.epoch.to_le_bytes());
        h[40..48].copy_from_slice(&self.created_ms.to_le_bytes());
        let crc = crc32c::crc32c(&h[..HEADER_CRC_AT]);
        h[HEADER_CRC_AT..].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// Decodes a header; the error is (offset, detail).
    pub fn decode(h: &[u8]) -> std::result::Result<SegmentHeader, (u64, String)> {
        if h.len() < HEADER_BYTES as usize {
            return Err((0, format!("file is {} bytes, shorter than the {HEADER_BYTES}-byte segment header", h.len())));
        }
        let u32_at = |i: usize| u32::from_le_bytes(h[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_le_bytes(h[i..i + 8].try_into().expect("8 bytes"));
        if h[0..8] != MAGIC {
            return Err((0, "bad magic: not a journal segment".into()));
        }
        let stored = u32_at(HEADER_CRC_AT);
        let actual = crc32c::crc32c(&h[..HEADER_CRC_AT]);
        if stored != actual {
            return Err((
                HEADER_CRC_AT as u64,
                format!("header CRC32C mismatch: stored {stored:#010x}, computed {actual:#010x}"),
            ));
        }
        let version = u32_at(8);
        if version > FORMAT_VERSION {
            return Err((
                8,
                format!(
                    "segment format version {version} is newer than the newest this engine reads ({FORMAT_VERSION}): \
                     upgrade the engine; the file was left untouched"
                ),
            ));
        }
        if version == 0 || u32_at(12) as u64 != HEADER_BYTES {
            return Err((8, format!("unsupported format version {version} or header size {}", u32_at(12))));
        }
        let header = SegmentHeader {
            version,
            sequence: u64_at(16),
            first_position: u64_at(24),
            epoch: u64_at(32),
            created_ms: u64_at(40),
        };
        if header.first_position == 0 {
            return Err((24, "first position 0".into()));
        }
        Ok(header)
    }
}

/// The file name of a segment: `YYYYMMDD.NNN`, the UTC creation date and the sequence.
pub fn segment_file_name(created_ms: u64, sequence: u64) -> String {
    let days = (created_ms / 86_400_000) as i64;
    let (y, m, d) = crate::calendar::civil_from_days(days);
    format!("{y:04}{m:02}{d:02}.{sequence:03}")
}

/// Whether a file name looks like a segment (`8 digits . 3+ digits`). Order comes from the
/// header's sequence, never from the name.
pub fn is_segment_file_name(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let Some((date, seq)) = name.split_once('.') else {
        return false;
    };
    date.len() == 8 && seq.len() >= 3 && date.bytes().chain(seq.bytes()).all(|b| b.is_ascii_digit())
}

pub fn corrupt(path: &Path, offset: u64, detail: impl Into<String>) -> EngineError {
    EngineError::CorruptJournal { path: path.to_path_buf(), offset, detail: detail.into() }
}

pub fn io_error(path: &Path, what: &str, e: std::io::Error) -> EngineError {
    EngineError::io(format!("journal file {}: {what}", path.display()), e)
}

/// Buffered positional reads over a segment file.
pub struct ChunkReader {
    file: std::sync::Arc<dyn VfsFile>,
    path: PathBuf,
    len: u64,
    buf: Vec<u8>,
    buf_start: u64,
}

impl ChunkReader {
    pub fn new(file: std::sync::Arc<dyn VfsFile>, path: &Path) -> Result<ChunkReader> {
        let len = file.len().map_err(|e| io_error(path, "reading its length", e))?;
        Ok(ChunkReader { file, path: path.to_path_buf(), len, buf: Vec::new(), buf_start: 0 })
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes from `offset`: at least `need` of them unless the file ends first.
    pub fn window(&mut self, offset: u64, need: usize) -> Result<&[u8]> {
        let buf_end = self.buf_start + self.buf.len() as u64;
        let want_end = (offset + need as u64).min(self.len);
        if offset < self.buf_start || want_end > buf_end {
            // The file's length can change under a reader: the writer appends to the
            // current segment and, at rotation, trims its preallocated tail. Size each read
            // from the length now, and look again once if the file shrank meanwhile.
            let mut attempt = 0;
            loop {
                self.len = self.file.len().map_err(|e| io_error(&self.path, "reading its length", e))?;
                let n = (self.len.saturating_sub(offset)).min(need.max(READ_CHUNK) as u64) as usize;
                self.buf.resize(n, 0);
                match self.file.read_exact_at(offset, &mut self.buf) {
                    Ok(()) => break,
                    Err(_) if attempt == 0 => attempt += 1,
                    Err(e) => return Err(io_error(&self.path, "reading", e)),
                }
            }
            self.buf_start = offset;
        }
        let start = (offset - self.buf_start) as usize;
        Ok(&self.buf[start..])
    }

    pub fn read_header(&mut self) -> std::result::Result<SegmentHeader, (u64, String)> {
        let path = self.path.clone();
        match self.window(0, HEADER_BYTES as usize) {
            Ok(w) => SegmentHeader::decode(&w[..w.len().min(HEADER_BYTES as usize)]),
            Err(e) => Err((0, format!("cannot read the header of {}: {e}", path.display()))),
        }
    }
}

/// One step of reading records.
pub enum Step<'a> {
    Record(RecordView<'a>, u64),
    /// Clean end of records (zero length field or end of file) at this offset.
    End(u64),
    /// A bad record at this offset.
    Bad(u64, String),
}

/// Reads the frame at `offset`.
pub fn read_step(reader: &mut ChunkReader, offset: u64) -> Result<Step<'_>> {
    if offset >= reader.len() {
        return Ok(Step::End(offset));
    }
    let w = reader.window(offset, FRAME_HEADER_BYTES)?;
    let len = if w.len() >= 4 { u32::from_le_bytes(w[0..4].try_into().expect("4 bytes")) as usize } else { 0 };
    let need = if (FIXED_BODY_BYTES..=MAX_RECORD_BYTES).contains(&len) {
        FRAME_HEADER_BYTES + len
    } else {
        FRAME_HEADER_BYTES
    };
    let w = reader.window(offset, need)?;
    let w = &w[..w.len().min(need)];
    Ok(match check_frame(w) {
        Frame::End => Step::End(offset),
        Frame::Short => Step::Bad(offset, format!("record cut short by the end of the file ({} bytes left)", w.len())),
        Frame::Bad(detail) => Step::Bad(offset, detail),
        Frame::Record(body) => match decode_view(body) {
            Ok(view) => Step::Record(view, (FRAME_HEADER_BYTES + body.len()) as u64),
            Err(detail) => Step::Bad(offset, format!("record with a valid CRC does not decode: {detail}")),
        },
    })
}

/// What follows a bad record or the end marker.
#[derive(Debug, PartialEq, Eq)]
pub enum After {
    Zeros,
    /// Non-zero bytes that contain no valid record.
    Garbage,
    /// A valid record at this offset.
    Valid(u64),
}

/// Looks for a valid record strictly after `from` whose position is after `expected`
/// (a record embedded in a torn record's value must not count), skipping zero bytes fast.
pub fn scan_after(reader: &mut ChunkReader, from: u64, expected: Position) -> Result<After> {
    let mut garbage = false;
    let mut q = from + 1;
    let len = reader.len();
    let max_records = len / (FRAME_HEADER_BYTES + FIXED_BODY_BYTES) as u64;
    while q < len {
        // Skip to the first non-zero byte; a record starting at q has a non-zero byte in
        // its length field q..q+4.
        let w = reader.window(q, 1)?;
        match w.iter().position(|&b| b != 0) {
            None => {
                q += w.len() as u64;
                continue;
            }
            Some(i) => {
                garbage = true;
                let p = q + i as u64;
                let mut candidate = p.saturating_sub(3).max(q).max(from + 1);
                while candidate <= p {
                    if let Step::Record(view, _) = read_step(reader, candidate)? {
                        if view.position > expected && view.position <= expected + max_records {
                            return Ok(After::Valid(candidate));
                        }
                    }
                    candidate += 1;
                }
                q = p + 1;
            }
        }
    }
    Ok(if garbage { After::Garbage } else { After::Zeros })
}

/// The result of validating one segment.
#[derive(Debug)]
pub struct Scan {
    pub header: SegmentHeader,
    pub records: u64,
    pub last_position: Option<Position>,
    /// Offset just after the last valid record.
    pub end: u64,
    pub file_len: u64,
    /// In the last segment: a torn tail to cut at `end` (offset and reason).
    pub torn: Option<(u64, String)>,
}

/// Validates every record of a segment, calling `visit` for each. `last` allows a torn
/// tail: a bad record with no valid record after it. Anything else bad is corruption.
pub fn scan_segment(
    reader: &mut ChunkReader,
    path: &Path,
    last: bool,
    visit: &mut dyn FnMut(u64, &RecordView<'_>) -> Result<()>,
) -> Result<Scan> {
    let header = reader.read_header().map_err(|(offset, detail)| corrupt(path, offset, detail))?;
    let file_len = reader.len();
    let mut offset = HEADER_BYTES;
    let mut expected = header.first_position;
    let mut records = 0;
    let torn;
    loop {
        let (bad_at, detail) = match read_step(reader, offset)? {
            Step::Record(view, size) => {
                if view.position != expected {
                    return Err(corrupt(
                        path,
                        offset,
                        format!("record position {} where {expected} was expected", view.position),
                    ));
                }
                visit(offset, &view)?;
                records += 1;
                expected += 1;
                offset += size;
                continue;
            }
            Step::End(at) => (at, None),
            Step::Bad(at, detail) => (at, Some(detail)),
        };
        let after = scan_after(reader, bad_at, expected - 1)?;
        if let After::Valid(valid_at) = after {
            let what = detail.unwrap_or_else(|| "zero length field (end of journal)".into());
            return Err(corrupt(path, bad_at, format!("{what}, yet a valid record follows at offset {valid_at}")));
        }
        torn = match (detail, last) {
            (Some(detail), true) => Some((bad_at, detail)),
            (Some(detail), false) => return Err(corrupt(path, bad_at, format!("{detail} (not the last segment)"))),
            (None, true) if after == After::Garbage => {
                Some((bad_at, "non-zero bytes after the last record".to_string()))
            }
            (None, _) => None,
        };
        break;
    }
    Ok(Scan { header, records, last_position: (records > 0).then_some(expected - 1), end: offset, file_len, torn })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_future_versions() {
        let h = SegmentHeader {
            version: FORMAT_VERSION,
            sequence: 7,
            first_position: 42,
            epoch: 3,
            created_ms: 1_700_000_000_000,
        };
        assert_eq!(SegmentHeader::decode(&h.encode()).unwrap(), h);
        let future = SegmentHeader { version: FORMAT_VERSION + 1, ..h }.encode();
        let (offset, detail) = SegmentHeader::decode(&future).unwrap_err();
        assert_eq!(offset, 8);
        assert!(detail.contains("newer than the newest this engine reads"), "{detail}");
        let mut bad = h.encode();
        bad[20] ^= 1;
        assert!(SegmentHeader::decode(&bad).unwrap_err().1.contains("CRC"));
    }

    #[test]
    fn names_are_utc_date_and_sequence() {
        assert_eq!(segment_file_name(0, 1), "19700101.001");
        // 2024-02-29T23:59:59Z
        assert_eq!(segment_file_name(1_709_251_199_000, 1234), "20240229.1234");
        assert!(is_segment_file_name(Path::new("/j/20240229.001")));
        assert!(!is_segment_file_name(Path::new("/j/20240229.01")));
        assert!(!is_segment_file_name(Path::new("/j/2024022.001")));
        assert!(!is_segment_file_name(Path::new("/j/20240229.001.tmp")));
    }
}
