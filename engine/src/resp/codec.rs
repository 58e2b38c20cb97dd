//! Incremental parsing of RESP requests: multibulk (`*N\r\n$len\r\n...\r\n`, what every
//! client library sends) and inline commands (a line of space-separated words, what people
//! type into telnet).
//!
//! [`parse`] looks at the start of the unparsed input and either returns one complete frame
//! and how many bytes it used, or `None` when the frame is not complete yet (the caller
//! reads more and calls again with the same bytes). It never allocates more than the limits
//! allow: lengths are checked when their header arrives, before any data is awaited.
//!
//! Invariant: `parse` never panics, whatever the bytes (a proptest guards this), and a
//! complete frame parses the same however its bytes were split across reads.

use thiserror::Error;

/// Most arguments in one command (the command name included). Our widest command is KILL
/// with many references; a client that needs more sends several.
pub const MAX_ARGS: usize = 16 * 1024;
/// Longest single argument: a value of [`crate::globals::limits::MAX_VALUE_BYTES`]
/// (3,641,144 bytes) plus headroom, so an oversized value reaches SET and gets the engine's
/// own `MAXSTRING` error instead of a protocol error.
pub const MAX_BULK_LEN: usize = 4 * 1024 * 1024;
/// Longest inline command line.
pub const MAX_INLINE_LEN: usize = 64 * 1024;
/// Most bytes of one request (one frame), and so of the unparsed input a connection holds.
/// Room for one maximal value, its key and its header.
pub const MAX_REQUEST_LEN: usize = 2 * MAX_BULK_LEN;
/// Longest `*N` or `$len` header line, CRLF excluded (`*` or `$`, a sign, 19 digits).
const MAX_HEADER_LEN: usize = 21;

/// The request limits of one connection. [`CodecLimits::default`] uses the constants above.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodecLimits {
    pub max_args: usize,
    pub max_bulk_len: usize,
    pub max_inline_len: usize,
    pub max_request_len: usize,
}

impl Default for CodecLimits {
    fn default() -> Self {
        CodecLimits {
            max_args: MAX_ARGS,
            max_bulk_len: MAX_BULK_LEN,
            max_inline_len: MAX_INLINE_LEN,
            max_request_len: MAX_REQUEST_LEN,
        }
    }
}

/// Malformed or oversized input. The server answers `-ERR Protocol error: <this>` and closes
/// the connection, because it can no longer tell where the next request starts.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    #[error("invalid multibulk length")]
    MultibulkLength,
    #[error("{count} arguments is more than the limit of {max}")]
    TooManyArgs { count: u64, max: usize },
    #[error("invalid bulk length")]
    BulkLength,
    #[error("bulk length {len} is more than the limit of {max}")]
    BulkTooLong { len: u64, max: usize },
    #[error("expected '$', got '{}'", char::from(*.0).escape_default())]
    ExpectedBulk(u8),
    #[error("bulk string is not followed by CRLF")]
    MissingCrlf,
    #[error("line is not terminated by CRLF")]
    BareNewline,
    #[error("too big mbulk count string")]
    HeaderTooLong,
    #[error("too big inline request (the limit is {max} bytes)")]
    InlineTooLong { max: usize },
    #[error("unbalanced quotes in request")]
    UnbalancedQuotes,
    #[error("request is larger than the limit of {max} bytes")]
    RequestTooLong { max: usize },
}

/// One request: its arguments, copied out of the input into one reusable buffer so the
/// input can be compacted while the frame is executed. Reusing a `Frame` across requests
/// keeps the hot path free of allocations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frame {
    data: Vec<u8>,
    ends: Vec<usize>,
}

impl Frame {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Argument `i` (0 is the command name). Panics when `i >= len()`.
    pub fn arg(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.data[start..self.ends[i]]
    }

    pub fn args(&self) -> impl Iterator<Item = &[u8]> + '_ {
        (0..self.len()).map(move |i| self.arg(i))
    }

    pub fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
    }

    /// Appends an argument (used by the parser, and by tests to build frames).
    pub fn push(&mut self, arg: &[u8]) {
        self.data.extend_from_slice(arg);
        self.ends.push(self.data.len());
    }

    /// Builds a frame from arguments.
    pub fn from_args<A: AsRef<[u8]>>(args: &[A]) -> Frame {
        let mut f = Frame::default();
        for a in args {
            f.push(a.as_ref());
        }
        f
    }

    /// Gives back memory after an unusually large request.
    pub fn shrink(&mut self, keep: usize) {
        if self.data.capacity() > keep {
            self.data = Vec::with_capacity(keep);
        }
        if self.ends.capacity() > keep / 8 {
            self.ends = Vec::new();
        }
    }
}

/// Parses one request from the start of `buf` into `frame`.
///
/// Returns `Ok(Some(n))` when a complete request used the first `n` bytes (the frame may be
/// empty: `*0\r\n` and blank inline lines are requests that do nothing), `Ok(None)` when more
/// bytes are needed, or the protocol error. On `Ok(None)` and on errors `frame` holds
/// nothing useful.
pub fn parse(buf: &[u8], limits: &CodecLimits, frame: &mut Frame) -> Result<Option<usize>, ProtocolError> {
    frame.clear();
    match buf.first() {
        None => Ok(None),
        Some(b'*') => parse_multibulk(buf, limits, frame),
        Some(_) => parse_inline(buf, limits, frame),
    }
}

/// Finds the CRLF-terminated line starting at `start`; `Ok(None)` when it is incomplete.
/// Returns the line without CRLF and the position after it.
fn header_line(buf: &[u8], start: usize) -> Result<Option<(&[u8], usize)>, ProtocolError> {
    let window = &buf[start..buf.len().min(start + MAX_HEADER_LEN + 2)];
    match window.iter().position(|&b| b == b'\n') {
        Some(i) => {
            if i == 0 || window[i - 1] != b'\r' {
                return Err(ProtocolError::BareNewline);
            }
            Ok(Some((&window[..i - 1], start + i + 1)))
        }
        None if window.len() >= MAX_HEADER_LEN + 2 => Err(ProtocolError::HeaderTooLong),
        None => Ok(None),
    }
}

/// A decimal integer with an optional leading `-`, as in RESP headers.
fn parse_int(s: &[u8]) -> Option<i64> {
    let (negative, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = digits.iter().fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'));
    Some(if negative { -v } else { v })
}

fn parse_multibulk(buf: &[u8], limits: &CodecLimits, frame: &mut Frame) -> Result<Option<usize>, ProtocolError> {
    let Some((line, mut pos)) = header_line(buf, 0)? else { return Ok(None) };
    let count = parse_int(&line[1..]).ok_or(ProtocolError::MultibulkLength)?;
    if count <= 0 {
        return Ok(Some(pos));
    }
    if count as u64 > limits.max_args as u64 {
        return Err(ProtocolError::TooManyArgs { count: count as u64, max: limits.max_args });
    }
    // The lengths are known before the data arrives: check the whole request's size as each
    // header comes in, so nothing oversized is ever buffered or allocated. The first pass
    // only checks that the frame is complete, so an incomplete request is never copied.
    let first = pos;
    for copy in [false, true] {
        pos = first;
        for _ in 0..count {
            let Some((line, after)) = header_line(buf, pos)? else { return Ok(None) };
            if line.first() != Some(&b'$') {
                return Err(ProtocolError::ExpectedBulk(line.first().copied().unwrap_or(b'\r')));
            }
            let len = parse_int(&line[1..]).filter(|&l| l >= 0).ok_or(ProtocolError::BulkLength)? as u64;
            if len > limits.max_bulk_len as u64 {
                return Err(ProtocolError::BulkTooLong { len, max: limits.max_bulk_len });
            }
            let end = after + len as usize;
            if end + 2 > limits.max_request_len {
                return Err(ProtocolError::RequestTooLong { max: limits.max_request_len });
            }
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(ProtocolError::MissingCrlf);
            }
            if copy {
                frame.push(&buf[after..end]);
            }
            pos = end + 2;
        }
    }
    Ok(Some(pos))
}

fn parse_inline(buf: &[u8], limits: &CodecLimits, frame: &mut Frame) -> Result<Option<usize>, ProtocolError> {
    let window = &buf[..buf.len().min(limits.max_inline_len + 2)];
    let Some(newline) = window.iter().position(|&b| b == b'\n') else {
        if window.len() >= limits.max_inline_len + 2 {
            return Err(ProtocolError::InlineTooLong { max: limits.max_inline_len });
        }
        return Ok(None);
    };
    let mut line = &buf[..newline];
    if line.last() == Some(&b'\r') {
        line = &line[..line.len() - 1];
    }
    if line.len() > limits.max_inline_len {
        return Err(ProtocolError::InlineTooLong { max: limits.max_inline_len });
    }
    split_inline(line, limits, frame)?;
    Ok(Some(newline + 1))
}

/// Splits an inline command line into words.
///
/// A word that starts with a quote is a quoted string as redis-cli writes them: `"..."`
/// with `\"`, `\\`, `\n`, `\r`, `\t`, `\xHH` escapes, or `'...'` with `\'`; the quotes are
/// removed. Any other word runs to the next space, but spaces inside `"..."` within it do not
/// split it and its quotes are kept, so a global reference such as `^a(1,"x y")` is one word.
fn split_inline(line: &[u8], limits: &CodecLimits, frame: &mut Frame) -> Result<(), ProtocolError> {
    let mut i = 0;
    let mut word = Vec::new();
    loop {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == line.len() {
            return Ok(());
        }
        if frame.len() == limits.max_args {
            return Err(ProtocolError::TooManyArgs { count: frame.len() as u64 + 1, max: limits.max_args });
        }
        word.clear();
        match line[i] {
            b'"' => {
                i += 1;
                loop {
                    match line.get(i) {
                        None => return Err(ProtocolError::UnbalancedQuotes),
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') if i + 1 < line.len() => {
                            let hex = |b: u8| (b as char).to_digit(16);
                            match line[i + 1] {
                                b'x' if i + 3 < line.len()
                                    && hex(line[i + 2]).is_some()
                                    && hex(line[i + 3]).is_some() =>
                                {
                                    let v = hex(line[i + 2]).unwrap_or(0) * 16 + hex(line[i + 3]).unwrap_or(0);
                                    word.push(v as u8);
                                    i += 4;
                                    continue;
                                }
                                b'n' => word.push(b'\n'),
                                b'r' => word.push(b'\r'),
                                b't' => word.push(b'\t'),
                                b'a' => word.push(7),
                                b'b' => word.push(8),
                                other => word.push(other),
                            }
                            i += 2;
                        }
                        Some(&c) => {
                            word.push(c);
                            i += 1;
                        }
                    }
                }
                if i < line.len() && !line[i].is_ascii_whitespace() {
                    return Err(ProtocolError::UnbalancedQuotes);
                }
            }
            b'\'' => {
                i += 1;
                loop {
                    match line.get(i) {
                        None => return Err(ProtocolError::UnbalancedQuotes),
                        Some(b'\'') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') if line.get(i + 1) == Some(&b'\'') => {
                            word.push(b'\'');
                            i += 2;
                        }
                        Some(&c) => {
                            word.push(c);
                            i += 1;
                        }
                    }
                }
                if i < line.len() && !line[i].is_ascii_whitespace() {
                    return Err(ProtocolError::UnbalancedQuotes);
                }
            }
            _ => {
                let mut in_string = false;
                while i < line.len() && (in_string || !line[i].is_ascii_whitespace()) {
                    if line[i] == b'"' {
                        in_string = !in_string;
                    }
                    word.push(line[i]);
                    i += 1;
                }
                if in_string {
                    return Err(ProtocolError::UnbalancedQuotes);
                }
            }
        }
        frame.push(&word);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limits() -> CodecLimits {
        CodecLimits::default()
    }

    /// Each frame's arguments.
    type Frames = Vec<Vec<Vec<u8>>>;

    fn parse_all(buf: &[u8]) -> Result<(Frames, usize), ProtocolError> {
        let mut frame = Frame::default();
        let mut pos = 0;
        let mut out = Vec::new();
        while let Some(n) = parse(&buf[pos..], &limits(), &mut frame)? {
            assert!(n > 0, "a complete frame uses at least one byte");
            pos += n;
            out.push(frame.args().map(<[u8]>::to_vec).collect());
        }
        Ok((out, pos))
    }

    fn one(buf: &[u8]) -> Result<Option<Vec<Vec<u8>>>, ProtocolError> {
        let mut frame = Frame::default();
        Ok(parse(buf, &limits(), &mut frame)?.map(|n| {
            assert_eq!(n, buf.len(), "whole input used");
            frame.args().map(<[u8]>::to_vec).collect()
        }))
    }

    fn v(args: &[&str]) -> Vec<Vec<u8>> {
        args.iter().map(|a| a.as_bytes().to_vec()).collect()
    }

    pub(crate) fn encode_request(args: &[Vec<u8>]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend(format!("${}\r\n", a.len()).bytes());
            out.extend(a);
            out.extend(b"\r\n");
        }
        out
    }

    #[test]
    fn multibulk() {
        assert_eq!(one(b"*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n").unwrap(), Some(v(&["GET", "foo"])));
        assert_eq!(one(b"*3\r\n$3\r\nSET\r\n$0\r\n\r\n$4\r\na\r\nb\r\n").unwrap(), Some(v(&["SET", "", "a\r\nb"])));
        assert_eq!(one(b"*0\r\n").unwrap(), Some(vec![]));
        assert_eq!(one(b"*-1\r\n").unwrap(), Some(vec![]));
        let binary = [b"*1\r\n$3\r\n".as_slice(), &[0, 255, b'\n'], b"\r\n"].concat();
        assert_eq!(one(&binary).unwrap(), Some(vec![vec![0, 255, b'\n']]));
    }

    #[test]
    fn incomplete_frames_wait() {
        let full = b"*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n";
        for cut in 0..full.len() {
            assert_eq!(one(&full[..cut]).unwrap(), None, "cut at {cut}");
        }
    }

    #[test]
    fn pipelined_frames_parse_in_order() {
        let input = b"*1\r\n$4\r\nPING\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$1\r\nx\r\n*1\r\n$4\r\nPI";
        let (frames, used) = parse_all(input).unwrap();
        assert_eq!(frames, vec![v(&["PING"]), v(&["PING"]), v(&["ECHO", "x"])]);
        assert_eq!(&input[used..], b"*1\r\n$4\r\nPI");
    }

    #[test]
    fn inline_commands() {
        assert_eq!(one(b"PING\r\n").unwrap(), Some(v(&["PING"])));
        assert_eq!(one(b"  set  foo   bar \n").unwrap(), Some(v(&["set", "foo", "bar"])));
        assert_eq!(one(b"\r\n").unwrap(), Some(vec![]));
        assert_eq!(
            one(b"SET ^a(1,\"x y\") \"hello \\\"world\\\"\\x41\"\r\n").unwrap(),
            Some(v(&["SET", "^a(1,\"x y\")", "hello \"world\"A"]))
        );
        assert_eq!(one(b"ECHO 'it\\'s'\r\n").unwrap(), Some(v(&["ECHO", "it's"])));
        assert_eq!(one(b"GET foo").unwrap(), None);
        assert_eq!(one(b"ECHO \"abc\r\n"), Err(ProtocolError::UnbalancedQuotes));
        assert_eq!(one(b"ECHO \"abc\"def\r\n"), Err(ProtocolError::UnbalancedQuotes));
        assert_eq!(one(b"GET ^a(\"x\r\n"), Err(ProtocolError::UnbalancedQuotes));
    }

    #[test]
    fn malformed_input_is_a_protocol_error() {
        assert_eq!(one(b"*x\r\n"), Err(ProtocolError::MultibulkLength));
        assert_eq!(one(b"*1\r\n+OK\r\n"), Err(ProtocolError::ExpectedBulk(b'+')));
        assert_eq!(one(b"*1\r\n$-1\r\n"), Err(ProtocolError::BulkLength));
        assert_eq!(one(b"*1\r\n$3\r\nfoobar\r\n"), Err(ProtocolError::MissingCrlf));
        assert_eq!(one(b"*1\n"), Err(ProtocolError::BareNewline));
        assert_eq!(one(b"*11111111111111111111111111111"), Err(ProtocolError::HeaderTooLong));
        assert!(matches!(one(b"*100000000\r\n"), Err(ProtocolError::TooManyArgs { .. })));
    }

    #[test]
    fn oversized_input_is_refused_before_it_arrives() {
        let header = format!("*2\r\n$3\r\nSET\r\n${}\r\n", MAX_BULK_LEN + 1);
        assert!(matches!(one(header.as_bytes()), Err(ProtocolError::BulkTooLong { .. })));
        let header = format!("*3\r\n$3\r\nSET\r\n${MAX_BULK_LEN}\r\n");
        let mut input = header.into_bytes();
        input.resize(input.len() + MAX_BULK_LEN, b'x');
        input.extend(format!("\r\n${MAX_BULK_LEN}\r\n").bytes());
        assert!(matches!(one(&input), Err(ProtocolError::RequestTooLong { .. })));
        let long_line = vec![b'a'; MAX_INLINE_LEN + 2];
        assert!(matches!(one(&long_line), Err(ProtocolError::InlineTooLong { .. })));
        let small = CodecLimits { max_args: 2, ..limits() };
        assert!(matches!(parse(b"a b c\r\n", &small, &mut Frame::default()), Err(ProtocolError::TooManyArgs { .. })));
    }

    #[test]
    fn a_maximal_value_fits() {
        let value = vec![b'v'; crate::globals::limits::MAX_VALUE_BYTES];
        let input = encode_request(&[b"SET".to_vec(), b"^a(1)".to_vec(), value.clone()]);
        assert_eq!(one(&input).unwrap().unwrap()[2], value);
    }

    proptest! {
        // Seeded, so a run is reproducible (PROPTEST_CASES / PROPTEST_RNG_SEED vary it).
        #![proptest_config(crate::fuzz::config(256, 0x52455350))]
        #[test]
        fn any_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_all(&bytes);
        }

        #[test]
        fn any_bytes_with_resp_shape_never_panic(parts in prop::collection::vec(
            prop_oneof![Just(b"*".to_vec()), Just(b"$".to_vec()), Just(b"\r\n".to_vec()), Just(b"\"".to_vec()),
                        Just(b"'".to_vec()), Just(b"\\x".to_vec()), Just(b"-1".to_vec()), Just(b" ".to_vec()),
                        prop::collection::vec(any::<u8>(), 0..4), (0u32..30).prop_map(|n| n.to_string().into_bytes())],
            0..40)) {
            let _ = parse_all(&parts.concat());
        }

        #[test]
        fn valid_frames_parse_identically_however_split(
            frames in prop::collection::vec(prop::collection::vec(prop::collection::vec(any::<u8>(), 0..20), 1..5), 1..4),
            cut_seed in any::<u64>(),
        ) {
            let input: Vec<u8> = frames.iter().flat_map(|f| encode_request(f)).collect();
            let cut = (cut_seed % (input.len() as u64 + 1)) as usize;
            // Feed the first part, then the rest, as two reads would.
            let mut buf = input[..cut].to_vec();
            let mut got = Vec::new();
            let mut frame = Frame::default();
            for chunk in [&input[cut..], &[][..]] {
                while let Some(n) = parse(&buf, &limits(), &mut frame).unwrap() {
                    got.push(frame.args().map(<[u8]>::to_vec).collect::<Vec<_>>());
                    buf.drain(..n);
                }
                buf.extend_from_slice(chunk);
            }
            prop_assert!(buf.is_empty());
            prop_assert_eq!(got, frames);
        }
    }
}
