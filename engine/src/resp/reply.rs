//! Encoding replies in RESP2 or, after `HELLO 3`, RESP3.
//!
//! [`ReplyWriter`] appends straight into a connection's output buffer: no intermediate reply
//! values on the hot path. Where RESP3 has a richer type (null, map, double, boolean,
//! verbatim text) the RESP2 form is the one Redis uses for the same reply.

/// The protocol version a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Resp2,
    Resp3,
}

impl Protocol {
    pub fn version(self) -> i64 {
        match self {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        }
    }
}

/// Appends replies to `out`.
pub struct ReplyWriter<'a> {
    pub out: &'a mut Vec<u8>,
    pub proto: Protocol,
}

/// Appends the decimal text of `v`.
fn push_int(out: &mut Vec<u8>, v: i64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = v.unsigned_abs();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[i..]);
}

impl ReplyWriter<'_> {
    fn line(&mut self, prefix: u8, n: i64) {
        self.out.push(prefix);
        push_int(self.out, n);
        self.out.extend_from_slice(b"\r\n");
    }

    pub fn ok(&mut self) {
        self.out.extend_from_slice(b"+OK\r\n");
    }

    /// A simple string; CR and LF (which would end it early) become spaces.
    pub fn simple(&mut self, s: &str) {
        self.out.push(b'+');
        push_line_text(self.out, s);
    }

    /// An error: `text` starts with the error name (`ERR`, `SYNTAX`, ...). CR and LF become
    /// spaces so a message can never break the framing.
    pub fn error(&mut self, text: &str) {
        self.out.push(b'-');
        push_line_text(self.out, text);
    }

    pub fn integer(&mut self, v: i64) {
        self.line(b':', v);
    }

    pub fn bulk(&mut self, v: &[u8]) {
        self.line(b'$', v.len() as i64);
        self.out.extend_from_slice(v);
        self.out.extend_from_slice(b"\r\n");
    }

    /// The absent value: `$-1` in RESP2, `_` in RESP3.
    pub fn null(&mut self) {
        match self.proto {
            Protocol::Resp2 => self.out.extend_from_slice(b"$-1\r\n"),
            Protocol::Resp3 => self.out.extend_from_slice(b"_\r\n"),
        }
    }

    /// The absent array: `*-1` in RESP2, `_` in RESP3.
    pub fn null_array(&mut self) {
        match self.proto {
            Protocol::Resp2 => self.out.extend_from_slice(b"*-1\r\n"),
            Protocol::Resp3 => self.out.extend_from_slice(b"_\r\n"),
        }
    }

    /// An array of `n` replies, to be written next.
    pub fn array(&mut self, n: usize) {
        self.line(b'*', n as i64);
    }

    /// A map of `n` key/value pairs, to be written next as `2n` replies: `%n` in RESP3, a
    /// flat array of `2n` in RESP2.
    pub fn map(&mut self, n: usize) {
        match self.proto {
            Protocol::Resp2 => self.line(b'*', 2 * n as i64),
            Protocol::Resp3 => self.line(b'%', n as i64),
        }
    }

    /// A set of `n` members: `~n` in RESP3, an array in RESP2.
    pub fn set(&mut self, n: usize) {
        match self.proto {
            Protocol::Resp2 => self.line(b'*', n as i64),
            Protocol::Resp3 => self.line(b'~', n as i64),
        }
    }

    /// A double: `,` in RESP3, its text as a bulk string in RESP2.
    pub fn double(&mut self, v: f64) {
        let text = if v.is_nan() {
            "nan".to_string()
        } else if v.is_infinite() {
            if v > 0.0 { "inf" } else { "-inf" }.to_string()
        } else {
            format!("{v}")
        };
        match self.proto {
            Protocol::Resp2 => self.bulk(text.as_bytes()),
            Protocol::Resp3 => {
                self.out.push(b',');
                self.out.extend_from_slice(text.as_bytes());
                self.out.extend_from_slice(b"\r\n");
            }
        }
    }

    /// A boolean: `#t`/`#f` in RESP3, `:1`/`:0` in RESP2.
    pub fn boolean(&mut self, v: bool) {
        match self.proto {
            Protocol::Resp2 => self.integer(i64::from(v)),
            Protocol::Resp3 => self.out.extend_from_slice(if v { b"#t\r\n" } else { b"#f\r\n" }),
        }
    }

    /// Human-readable text (INFO, CLIENT INFO): verbatim `=len\r\ntxt:...` in RESP3, a bulk
    /// string in RESP2.
    pub fn verbatim(&mut self, text: &str) {
        match self.proto {
            Protocol::Resp2 => self.bulk(text.as_bytes()),
            Protocol::Resp3 => {
                self.line(b'=', text.len() as i64 + 4);
                self.out.extend_from_slice(b"txt:");
                self.out.extend_from_slice(text.as_bytes());
                self.out.extend_from_slice(b"\r\n");
            }
        }
    }
}

fn push_line_text(out: &mut Vec<u8>, s: &str) {
    out.extend(s.bytes().map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(f: impl Fn(&mut ReplyWriter)) -> (String, String) {
        let mut two = Vec::new();
        f(&mut ReplyWriter { out: &mut two, proto: Protocol::Resp2 });
        let mut three = Vec::new();
        f(&mut ReplyWriter { out: &mut three, proto: Protocol::Resp3 });
        (String::from_utf8(two).unwrap(), String::from_utf8(three).unwrap())
    }

    #[test]
    fn scalars() {
        assert_eq!(both(|w| w.ok()).0, "+OK\r\n");
        assert_eq!(both(|w| w.simple("PONG")).0, "+PONG\r\n");
        assert_eq!(both(|w| w.error("SYNTAX bad\r\nthing")).0, "-SYNTAX bad  thing\r\n");
        for v in [0, 7, -7, 1234567890, i64::MAX, i64::MIN] {
            assert_eq!(both(|w| w.integer(v)).0, format!(":{v}\r\n"));
        }
        assert_eq!(both(|w| w.bulk(b"a\r\nb")).0, "$4\r\na\r\nb\r\n");
        assert_eq!(both(|w| w.bulk(b"")).0, "$0\r\n\r\n");
    }

    #[test]
    fn types_that_differ_between_versions() {
        assert_eq!(both(|w| w.null()), ("$-1\r\n".into(), "_\r\n".into()));
        assert_eq!(both(|w| w.null_array()), ("*-1\r\n".into(), "_\r\n".into()));
        assert_eq!(both(|w| w.map(2)), ("*4\r\n".into(), "%2\r\n".into()));
        assert_eq!(both(|w| w.set(3)), ("*3\r\n".into(), "~3\r\n".into()));
        assert_eq!(both(|w| w.double(1.5)), ("$3\r\n1.5\r\n".into(), ",1.5\r\n".into()));
        assert_eq!(both(|w| w.double(f64::INFINITY)).1, ",inf\r\n");
        assert_eq!(both(|w| w.boolean(true)), (":1\r\n".into(), "#t\r\n".into()));
        assert_eq!(both(|w| w.boolean(false)), (":0\r\n".into(), "#f\r\n".into()));
        assert_eq!(both(|w| w.verbatim("a:1")), ("$3\r\na:1\r\n".into(), "=7\r\ntxt:a:1\r\n".into()));
    }
}
