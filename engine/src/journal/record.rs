//! Journal records: types and their byte encoding (see docs/design/journal.md).
//!
//! A record on disk is a frame `len: u32 LE, crc: u32 LE (CRC32C of body), body[len]`.
//! The body is `position u64, epoch u64, txn u64, time_ms u64, kind u8` and a payload per
//! kind. Every integer is fixed-width little-endian; every variable field is prefixed by its
//! length. Decoding goes through the borrowed [`RecordView`] so validating a segment
//! allocates nothing.

/// Monotonically increasing record sequence number; the first record is 1.
pub type Position = u64;

/// Bytes of the frame before the body: length and CRC32C.
pub const FRAME_HEADER_BYTES: usize = 8;
/// Largest body a record may have. Values are at most 3,641,144 bytes; a larger body is
/// a bug on write (panic) and corruption on read.
pub const MAX_RECORD_BYTES: usize = 16 << 20;
/// Fixed part of every body: position, epoch, txn, time_ms, kind.
pub const FIXED_BODY_BYTES: usize = 8 * 4 + 1;

const KIND_SET: u8 = 1;
const KIND_KILL: u8 = 2;
const KIND_ZKILL: u8 = 3;
const KIND_TSTART: u8 = 4;
const KIND_TCOMMIT: u8 = 5;
const KIND_TROLLBACK: u8 = 6;
const KIND_SYNC: u8 = 7;
const KIND_MIRROR_NEW_DATABASE: u8 = 8;
const KIND_ECP_ORIGIN: u8 = 9;

const OLD_NOT_RECORDED: u8 = 0;
const OLD_ABSENT: u8 = 1;
const OLD_PRESENT: u8 = 2;

/// The value a key had before a change; recorded inside transactions only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OldValue {
    NotRecorded,
    Absent,
    Present(Vec<u8>),
}

/// What a record does. Keys are encoded global references (`globals::key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordBody {
    Set {
        db: String,
        key: Vec<u8>,
        value: Vec<u8>,
        old: OldValue,
    },
    /// KILL of a subtree; inside transactions, `old` lists every (key, value) removed.
    Kill {
        db: String,
        key: Vec<u8>,
        old: Option<Vec<(Vec<u8>, Vec<u8>)>>,
    },
    ZKill {
        db: String,
        key: Vec<u8>,
        old: OldValue,
    },
    TStart,
    TCommit,
    TRollback,
    /// Sync marker.
    Sync,
    /// In a mirror journal: the primary added database `db` to the mirror while it was
    /// empty. A member may follow an empty database of that name from this record on,
    /// with no copy of the file (the reference's "new mirrored database" path).
    MirrorNewDatabase {
        db: String,
    },
    /// The change that follows was an ECP request: `records` records right after this one
    /// carry it, and `result` is what its reply said. A request counts as applied exactly
    /// when this record and all of its `records` are in the journal, which is how a data
    /// server answers a reissued request once (docs/design/ecp.md, "Exactly once").
    EcpOrigin(EcpOrigin),
}

/// Who sent an ECP request: the application server, its incarnation (a new one per
/// start), the channel (one per application-server session) and the request's sequence
/// number in that channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcpOrigin {
    pub app: String,
    pub incarnation: u64,
    pub channel: u64,
    pub seq: u64,
    /// How many records after this one carry the change.
    pub records: u32,
    /// The reply's value, for requests whose reply is computed (INCR's new value).
    pub result: Vec<u8>,
}

/// One journal record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub position: Position,
    pub epoch: u64,
    /// Transaction id; 0 = none.
    pub txn: u64,
    /// Unix time in milliseconds.
    pub time_ms: u64,
    pub body: RecordBody,
}

fn old_len(old: &OldValue) -> usize {
    match old {
        OldValue::Present(v) => 1 + 4 + v.len(),
        _ => 1,
    }
}

impl RecordBody {
    /// The size of this body once encoded (without the 8-byte frame header). A caller
    /// whose record would exceed [`MAX_RECORD_BYTES`] (a KILL of a huge subtree inside a
    /// transaction) must split it before appending.
    pub fn encoded_len(&self) -> usize {
        FIXED_BODY_BYTES
            + match self {
                RecordBody::Set { db, key, value, old } => {
                    2 + db.len() + 4 + key.len() + 4 + value.len() + old_len(old)
                }
                RecordBody::Kill { db, key, old } => {
                    2 + db.len()
                        + 4
                        + key.len()
                        + 1
                        + old
                            .as_ref()
                            .map_or(0, |pairs| 4 + pairs.iter().map(|(k, v)| 8 + k.len() + v.len()).sum::<usize>())
                }
                RecordBody::ZKill { db, key, old } => 2 + db.len() + 4 + key.len() + old_len(old),
                RecordBody::TStart | RecordBody::TCommit | RecordBody::TRollback | RecordBody::Sync => 0,
                RecordBody::MirrorNewDatabase { db } => 2 + db.len(),
                RecordBody::EcpOrigin(o) => 2 + o.app.len() + 8 * 3 + 4 + 4 + o.result.len(),
            }
    }
}

fn put_u32_len(out: &mut Vec<u8>, n: usize) {
    let n = u32::try_from(n).expect("field length checked against MAX_RECORD_BYTES");
    out.extend_from_slice(&n.to_le_bytes());
}

fn put_bytes32(out: &mut Vec<u8>, b: &[u8]) {
    put_u32_len(out, b.len());
    out.extend_from_slice(b);
}

fn put_db(out: &mut Vec<u8>, db: &str) {
    let n = u16::try_from(db.len()).expect("database names are short");
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(db.as_bytes());
}

fn put_old(out: &mut Vec<u8>, old: &OldValue) {
    match old {
        OldValue::NotRecorded => out.push(OLD_NOT_RECORDED),
        OldValue::Absent => out.push(OLD_ABSENT),
        OldValue::Present(v) => {
            out.push(OLD_PRESENT);
            put_bytes32(out, v);
        }
    }
}

/// Appends the framed record to `out`; returns the number of bytes appended.
///
/// Panics if the body exceeds [`MAX_RECORD_BYTES`] (a bug in the caller, which must split
/// such changes) or a database name exceeds 65535 bytes.
pub fn encode_into(record: &Record, out: &mut Vec<u8>) -> usize {
    encode_parts(record.position, record.epoch, record.txn, record.time_ms, &record.body, out)
}

/// [`encode_into`] from the parts of a record, so appending needs no copy of the body.
pub fn encode_parts(
    position: Position,
    epoch: u64,
    txn: u64,
    time_ms: u64,
    body: &RecordBody,
    out: &mut Vec<u8>,
) -> usize {
    let body_len = body.encoded_len();
    assert!(
        body_len <= MAX_RECORD_BYTES,
        "journal record of {body_len} bytes exceeds the maximum of {MAX_RECORD_BYTES}: the caller must split it"
    );
    let start = out.len();
    out.reserve(FRAME_HEADER_BYTES + body_len);
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    let body_start = out.len();
    out.extend_from_slice(&position.to_le_bytes());
    out.extend_from_slice(&epoch.to_le_bytes());
    out.extend_from_slice(&txn.to_le_bytes());
    out.extend_from_slice(&time_ms.to_le_bytes());
    match body {
        RecordBody::Set { db, key, value, old } => {
            out.push(KIND_SET);
            put_db(out, db);
            put_bytes32(out, key);
            put_bytes32(out, value);
            put_old(out, old);
        }
        RecordBody::Kill { db, key, old } => {
            out.push(KIND_KILL);
            put_db(out, db);
            put_bytes32(out, key);
            match old {
                None => out.push(0),
                Some(pairs) => {
                    out.push(1);
                    put_u32_len(out, pairs.len());
                    for (k, v) in pairs {
                        put_bytes32(out, k);
                        put_bytes32(out, v);
                    }
                }
            }
        }
        RecordBody::ZKill { db, key, old } => {
            out.push(KIND_ZKILL);
            put_db(out, db);
            put_bytes32(out, key);
            put_old(out, old);
        }
        RecordBody::TStart => out.push(KIND_TSTART),
        RecordBody::TCommit => out.push(KIND_TCOMMIT),
        RecordBody::TRollback => out.push(KIND_TROLLBACK),
        RecordBody::Sync => out.push(KIND_SYNC),
        RecordBody::MirrorNewDatabase { db } => {
            out.push(KIND_MIRROR_NEW_DATABASE);
            put_db(out, db);
        }
        RecordBody::EcpOrigin(o) => {
            out.push(KIND_ECP_ORIGIN);
            put_db(out, &o.app);
            out.extend_from_slice(&o.incarnation.to_le_bytes());
            out.extend_from_slice(&o.channel.to_le_bytes());
            out.extend_from_slice(&o.seq.to_le_bytes());
            out.extend_from_slice(&o.records.to_le_bytes());
            put_bytes32(out, &o.result);
        }
    }
    assert_eq!(out.len() - body_start, body_len, "journal record encoded_len disagrees with encoding");
    let crc = crc32c::crc32c(&out[body_start..]);
    out[body_start - 4..body_start].copy_from_slice(&crc.to_le_bytes());
    out.len() - start
}

/// Encodes one framed record (convenience for tests and tools).
pub fn encode(record: &Record) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(record, &mut out);
    out
}

/// What a frame at some offset holds.
#[derive(Debug)]
pub enum Frame<'a> {
    /// A frame whose length is in range and whose CRC matches.
    Record(&'a [u8]),
    /// A zero length field: the zero-filled (preallocated) end of the journal.
    End,
    /// Fewer bytes than the frame header or its body announce.
    Short,
    /// Length out of range or CRC mismatch.
    Bad(String),
}

/// Checks the frame at the start of `buf`.
pub fn check_frame(buf: &[u8]) -> Frame<'_> {
    if buf.len() < FRAME_HEADER_BYTES {
        if buf.iter().all(|&b| b == 0) {
            return Frame::End;
        }
        return Frame::Short;
    }
    let len = u32::from_le_bytes(buf[0..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(buf[4..8].try_into().expect("4 bytes"));
    if len == 0 {
        return Frame::End;
    }
    if !(FIXED_BODY_BYTES..=MAX_RECORD_BYTES).contains(&len) {
        return Frame::Bad(format!("record length {len} outside {FIXED_BODY_BYTES}..={MAX_RECORD_BYTES}"));
    }
    let Some(body) = buf.get(FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + len) else {
        return Frame::Short;
    };
    let actual = crc32c::crc32c(body);
    if actual != crc {
        return Frame::Bad(format!("record CRC32C mismatch: stored {crc:#010x}, computed {actual:#010x}"));
    }
    Frame::Record(body)
}

/// A decoded old value, borrowing from the segment bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OldView<'a> {
    NotRecorded,
    Absent,
    Present(&'a [u8]),
}

impl OldView<'_> {
    fn to_owned(self) -> OldValue {
        match self {
            OldView::NotRecorded => OldValue::NotRecorded,
            OldView::Absent => OldValue::Absent,
            OldView::Present(v) => OldValue::Present(v.to_vec()),
        }
    }
}

/// A decoded body, borrowing from the segment bytes.
#[derive(Debug, Clone, Copy)]
pub enum BodyView<'a> {
    Set {
        db: &'a str,
        key: &'a [u8],
        value: &'a [u8],
        old: OldView<'a>,
    },
    /// `old`: the entry count and their validated encoding.
    Kill {
        db: &'a str,
        key: &'a [u8],
        old: Option<(u32, &'a [u8])>,
    },
    ZKill {
        db: &'a str,
        key: &'a [u8],
        old: OldView<'a>,
    },
    TStart,
    TCommit,
    TRollback,
    Sync,
    MirrorNewDatabase {
        db: &'a str,
    },
    EcpOrigin {
        app: &'a str,
        incarnation: u64,
        channel: u64,
        seq: u64,
        records: u32,
        result: &'a [u8],
    },
}

/// A decoded record, borrowing from the segment bytes.
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    pub position: Position,
    pub epoch: u64,
    pub txn: u64,
    pub time_ms: u64,
    pub body: BodyView<'a>,
}

struct Cursor<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or_else(|| {
            format!("{what} of {n} bytes at body offset {} runs past the record end ({})", self.at, self.buf.len())
        })?;
        let out = &self.buf[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.take(2, what)?.try_into().expect("2 bytes")))
    }
    fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self, what: &str) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8, what)?.try_into().expect("8 bytes")))
    }
    fn bytes32(&mut self, what: &str) -> Result<&'a [u8], String> {
        let n = self.u32(what)? as usize;
        self.take(n, what)
    }
    fn db(&mut self) -> Result<&'a str, String> {
        let n = self.u16("database name length")? as usize;
        std::str::from_utf8(self.take(n, "database name")?).map_err(|_| "database name is not UTF-8".to_string())
    }
    fn old(&mut self) -> Result<OldView<'a>, String> {
        match self.u8("old value tag")? {
            OLD_NOT_RECORDED => Ok(OldView::NotRecorded),
            OLD_ABSENT => Ok(OldView::Absent),
            OLD_PRESENT => Ok(OldView::Present(self.bytes32("old value")?)),
            t => Err(format!("unknown old value tag {t}")),
        }
    }
}

/// Decodes and validates a record body (the bytes a [`Frame::Record`] returned).
pub fn decode_view(body: &[u8]) -> Result<RecordView<'_>, String> {
    let mut c = Cursor { buf: body, at: 0 };
    let position = c.u64("position")?;
    let epoch = c.u64("epoch")?;
    let txn = c.u64("txn")?;
    let time_ms = c.u64("time")?;
    if position == 0 {
        return Err("record position 0".into());
    }
    let kind_body = match c.u8("kind")? {
        KIND_SET => {
            let db = c.db()?;
            let key = c.bytes32("key")?;
            let value = c.bytes32("value")?;
            BodyView::Set { db, key, value, old: c.old()? }
        }
        KIND_KILL => {
            let db = c.db()?;
            let key = c.bytes32("key")?;
            let old = match c.u8("kill old tag")? {
                0 => None,
                1 => {
                    let count = c.u32("kill old count")?;
                    let start = c.at;
                    for _ in 0..count {
                        c.bytes32("kill old key")?;
                        c.bytes32("kill old value")?;
                    }
                    Some((count, &body[start..c.at]))
                }
                t => return Err(format!("unknown kill old tag {t}")),
            };
            BodyView::Kill { db, key, old }
        }
        KIND_ZKILL => {
            let db = c.db()?;
            let key = c.bytes32("key")?;
            BodyView::ZKill { db, key, old: c.old()? }
        }
        KIND_TSTART => BodyView::TStart,
        KIND_TCOMMIT => BodyView::TCommit,
        KIND_TROLLBACK => BodyView::TRollback,
        KIND_SYNC => BodyView::Sync,
        KIND_MIRROR_NEW_DATABASE => BodyView::MirrorNewDatabase { db: c.db()? },
        KIND_ECP_ORIGIN => BodyView::EcpOrigin {
            app: c.db()?,
            incarnation: c.u64("ECP incarnation")?,
            channel: c.u64("ECP channel")?,
            seq: c.u64("ECP sequence number")?,
            records: c.u32("ECP record count")?,
            result: c.bytes32("ECP result")?,
        },
        k => return Err(format!("unknown record kind {k}")),
    };
    if c.at != body.len() {
        return Err(format!("{} trailing bytes after the record", body.len() - c.at));
    }
    Ok(RecordView { position, epoch, txn, time_ms, body: kind_body })
}

impl RecordView<'_> {
    pub fn to_record(&self) -> Record {
        let body = match self.body {
            BodyView::Set { db, key, value, old } => {
                RecordBody::Set { db: db.to_string(), key: key.to_vec(), value: value.to_vec(), old: old.to_owned() }
            }
            BodyView::Kill { db, key, old } => RecordBody::Kill {
                db: db.to_string(),
                key: key.to_vec(),
                old: old.map(|(count, raw)| {
                    let mut c = Cursor { buf: raw, at: 0 };
                    (0..count)
                        .map(|_| {
                            let k = c.bytes32("").expect("validated by decode_view");
                            let v = c.bytes32("").expect("validated by decode_view");
                            (k.to_vec(), v.to_vec())
                        })
                        .collect()
                }),
            },
            BodyView::ZKill { db, key, old } => {
                RecordBody::ZKill { db: db.to_string(), key: key.to_vec(), old: old.to_owned() }
            }
            BodyView::TStart => RecordBody::TStart,
            BodyView::TCommit => RecordBody::TCommit,
            BodyView::TRollback => RecordBody::TRollback,
            BodyView::Sync => RecordBody::Sync,
            BodyView::MirrorNewDatabase { db } => RecordBody::MirrorNewDatabase { db: db.to_string() },
            BodyView::EcpOrigin { app, incarnation, channel, seq, records, result } => {
                RecordBody::EcpOrigin(EcpOrigin {
                    app: app.to_string(),
                    incarnation,
                    channel,
                    seq,
                    records,
                    result: result.to_vec(),
                })
            }
        };
        Record { position: self.position, epoch: self.epoch, txn: self.txn, time_ms: self.time_ms, body }
    }
}

/// Decodes one framed record from the start of `buf` (convenience for tests and tools).
pub fn decode(buf: &[u8]) -> Result<(Record, usize), String> {
    match check_frame(buf) {
        Frame::Record(body) => Ok((decode_view(body)?.to_record(), FRAME_HEADER_BYTES + body.len())),
        Frame::End => Err("end of journal".into()),
        Frame::Short => Err("short record".into()),
        Frame::Bad(detail) => Err(detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..max)
    }

    fn old_value() -> impl Strategy<Value = OldValue> {
        prop_oneof![Just(OldValue::NotRecorded), Just(OldValue::Absent), bytes(40).prop_map(OldValue::Present)]
    }

    fn body() -> impl Strategy<Value = RecordBody> {
        prop_oneof![
            ("[a-zA-Z0-9]{0,12}", bytes(40), bytes(80), old_value())
                .prop_map(|(db, key, value, old)| RecordBody::Set { db, key, value, old }),
            ("[a-z]{0,12}", bytes(40), proptest::option::of(proptest::collection::vec((bytes(20), bytes(20)), 0..5)))
                .prop_map(|(db, key, old)| RecordBody::Kill { db, key, old }),
            ("[a-z]{0,12}", bytes(40), old_value()).prop_map(|(db, key, old)| RecordBody::ZKill { db, key, old }),
            Just(RecordBody::TStart),
            Just(RecordBody::TCommit),
            Just(RecordBody::TRollback),
            Just(RecordBody::Sync),
            "[A-Z]{1,12}".prop_map(|db| RecordBody::MirrorNewDatabase { db }),
            ("[a-z0-9]{1,12}", any::<u64>(), any::<u64>(), any::<u64>(), any::<u32>(), bytes(20)).prop_map(
                |(app, incarnation, channel, seq, records, result)| RecordBody::EcpOrigin(EcpOrigin {
                    app,
                    incarnation,
                    channel,
                    seq,
                    records,
                    result
                })
            ),
        ]
    }

    fn record() -> impl Strategy<Value = Record> {
        (1..u64::MAX, any::<u64>(), any::<u64>(), any::<u64>(), body())
            .prop_map(|(position, epoch, txn, time_ms, body)| Record { position, epoch, txn, time_ms, body })
    }

    proptest! {
        // Seeded, so a run is reproducible (PROPTEST_CASES / PROPTEST_RNG_SEED vary it).
        #![proptest_config(crate::fuzz::config(256, 0x4a4e5231))]
        #[test]
        fn every_record_round_trips(r in record()) {
            let encoded = encode(&r);
            prop_assert_eq!(encoded.len(), FRAME_HEADER_BYTES + r.body.encoded_len());
            let (decoded, used) = decode(&encoded).unwrap();
            prop_assert_eq!(used, encoded.len());
            prop_assert_eq!(decoded, r);
        }

        #[test]
        fn any_single_byte_corruption_is_detected(r in record(), at in any::<prop::sample::Index>(), flip in 1u8..=255) {
            let mut encoded = encode(&r);
            let i = at.index(encoded.len());
            encoded[i] ^= flip;
            match decode(&encoded) {
                Err(_) => {}
                Ok((decoded, _)) => prop_assert!(false, "corruption at byte {} undetected: {:?}", i, decoded),
            }
        }
    }

    #[test]
    #[should_panic(expected = "exceeds the maximum")]
    fn oversized_record_panics_on_write() {
        let r = Record {
            position: 1,
            epoch: 0,
            txn: 0,
            time_ms: 0,
            body: RecordBody::Set {
                db: "d".into(),
                key: vec![1],
                value: vec![0; MAX_RECORD_BYTES],
                old: OldValue::NotRecorded,
            },
        };
        encode(&r);
    }

    #[test]
    fn oversized_length_field_is_corruption_on_read() {
        let mut buf = vec![0u8; 64];
        buf[0..4].copy_from_slice(&((MAX_RECORD_BYTES + 1) as u32).to_le_bytes());
        assert!(matches!(check_frame(&buf), Frame::Bad(d) if d.contains("outside")));
    }
}
