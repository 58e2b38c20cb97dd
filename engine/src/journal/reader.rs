//! Reading records in position order across segment files.

use super::record::{Position, Record};
use super::segment::{corrupt, io_error, read_step, ChunkReader, Step, HEADER_BYTES};
use super::SegmentInfo;
use crate::error::{EngineError, Result};
use crate::vfs::{OpenMode, Vfs};
use std::sync::Arc;

/// Iterator over records `from..=upto` (the durable position when it was created).
/// Each record is validated right after it is read; a bad one ends the iteration with a
/// `CorruptJournal` error.
pub struct JournalReader {
    vfs: Arc<dyn Vfs>,
    segments: Vec<SegmentInfo>,
    index: usize,
    reader: Option<ChunkReader>,
    offset: u64,
    next: Position,
    upto: Position,
    done: bool,
    /// Where to start in the first segment opened (a record boundary at or before
    /// `next`), instead of its top.
    start: Option<u64>,
}

impl std::fmt::Debug for JournalReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalReader").field("next", &self.next).field("upto", &self.upto).finish()
    }
}

impl JournalReader {
    /// `start`: the offset of a record at or before `from` in the segment that holds it,
    /// when one is known; records before `from` are still skipped, and checked.
    pub(super) fn new(
        vfs: Arc<dyn Vfs>,
        segments: Vec<SegmentInfo>,
        from: Position,
        upto: Position,
        start: Option<u64>,
    ) -> Result<JournalReader> {
        let from = from.max(1);
        let oldest = segments.first().map_or(1, |s| s.first_position);
        if from < oldest {
            return Err(EngineError::Invalid(format!(
                "journal position {from} was purged; the oldest record still kept is {oldest}"
            )));
        }
        // The last segment that starts at or before `from`.
        let index = segments.iter().rposition(|s| s.first_position <= from).unwrap_or(0);
        Ok(JournalReader {
            vfs,
            segments,
            index,
            reader: None,
            offset: HEADER_BYTES,
            next: from,
            upto,
            done: false,
            start,
        })
    }

    fn open_segment(&mut self) -> Result<()> {
        let info = &self.segments[self.index];
        let file = self.vfs.open(&info.path, OpenMode::ReadOnly).map_err(|e| io_error(&info.path, "opening", e))?;
        let mut reader = ChunkReader::new(file, &info.path)?;
        let header = reader.read_header().map_err(|(offset, detail)| corrupt(&info.path, offset, detail))?;
        if header.first_position != info.first_position {
            return Err(corrupt(
                &info.path,
                24,
                format!("first position {} changed from {}", header.first_position, info.first_position),
            ));
        }
        self.reader = Some(reader);
        self.offset = self.start.take().unwrap_or(HEADER_BYTES).max(HEADER_BYTES);
        Ok(())
    }

    fn next_record(&mut self) -> Result<Option<Record>> {
        loop {
            if self.next > self.upto {
                return Ok(None);
            }
            if self.reader.is_none() {
                self.open_segment()?;
            }
            let reader = self.reader.as_mut().expect("opened above");
            let path = &self.segments[self.index].path;
            match read_step(reader, self.offset)? {
                Step::Record(view, size) if view.position < self.next => self.offset += size,
                Step::Record(view, size) => {
                    if view.position != self.next {
                        return Err(corrupt(
                            path,
                            self.offset,
                            format!("record position {} where {} was expected", view.position, self.next),
                        ));
                    }
                    self.offset += size;
                    self.next += 1;
                    return Ok(Some(view.to_record()));
                }
                Step::End(at) | Step::Bad(at, _) if self.index + 1 < self.segments.len() => {
                    let following = self.segments[self.index + 1].first_position;
                    if following != self.next {
                        return Err(corrupt(
                            path,
                            at,
                            format!("segment ends before position {}; the next one starts at {following}", self.next),
                        ));
                    }
                    self.index += 1;
                    self.reader = None;
                }
                Step::End(at) => {
                    return Err(corrupt(path, at, format!("durable record {} is missing", self.next)));
                }
                Step::Bad(at, detail) => return Err(corrupt(path, at, detail)),
            }
        }
    }
}

impl Iterator for JournalReader {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        if self.done {
            return None;
        }
        match self.next_record() {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
