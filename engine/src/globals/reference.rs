//! The text syntax of global references, shared by RESP arguments, the terminal's output
//! and the management API: `^Company(1,"name")`, `^x("a"_$c(0)_"b")`.
//!
//! Parsing accepts literals only (quoted strings with `""` for a quote, numeric literals,
//! `$c(n,...)`, joined with `_`); the terminal evaluates expressions itself and formats the
//! result with [`format`]. Formatting always produces text that [`parse`] reads back.

use super::error::GlobalsError;
use super::number::{is_canonical_number, Number};
use super::subscript::{validate_name, GlobalRef, Subscript};

/// Parses `^Name` or `^Name(sub, ...)`.
pub fn parse(input: &str) -> Result<GlobalRef, GlobalsError> {
    let mut p = Parser { input, bytes: input.as_bytes(), pos: 0 };
    let r = p.reference()?;
    p.skip_spaces();
    if p.pos != p.bytes.len() {
        return Err(p.error("unexpected text after the reference"));
    }
    Ok(r)
}

/// Parses a key as a RESP client sends it. `^...` is a reference; a bare Redis-style key
/// maps onto a global by its colons: `foo` is `^foo`, `user:1000:name` is
/// `^user(1000,"name")`, so plain Redis tools and key conventions work unchanged.
pub fn parse_key(key: &[u8]) -> Result<GlobalRef, GlobalsError> {
    if key.first() == Some(&b'^') {
        let text = std::str::from_utf8(key).map_err(|_| GlobalsError::Syntax {
            input: String::from_utf8_lossy(key).into_owned(),
            column: 1,
            reason: "reference is not valid UTF-8 (use $c(...) for other bytes)".into(),
        })?;
        return parse(text);
    }
    let mut parts = key.split(|&b| b == b':');
    let name = parts.next().unwrap_or_default();
    let name = std::str::from_utf8(name)
        .map_err(|_| GlobalsError::BadName { name: String::from_utf8_lossy(name).into_owned() })?;
    let subscripts =
        parts.enumerate().map(|(i, s)| Subscript::from_bytes(s.to_vec(), i + 1)).collect::<Result<Vec<_>, _>>()?;
    GlobalRef::new(name, subscripts)
}

/// Formats a reference so that [`parse`] reads it back.
pub fn format(r: &GlobalRef) -> String {
    let mut out = String::with_capacity(r.name.len() + 1 + r.subscripts.len() * 6);
    out.push('^');
    out.push_str(&r.name);
    if !r.subscripts.is_empty() {
        out.push('(');
        for (i, s) in r.subscripts.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match s {
                Subscript::Number(n) => out.push_str(n),
                Subscript::String(b) => out.push_str(&quote(b)),
            }
        }
        out.push(')');
    }
    out
}

/// Formats a value as ZWRITE does: canonical numbers bare, other strings quoted.
pub fn format_value(v: &[u8]) -> String {
    if is_canonical_number(v) {
        String::from_utf8_lossy(v).into_owned()
    } else {
        quote(v)
    }
}

/// A string literal: `"a""b"` for printable text, `$c(...)` joined with `_` for other bytes.
pub fn quote(bytes: &[u8]) -> String {
    let text = std::str::from_utf8(bytes).ok().filter(|s| !s.chars().any(char::is_control));
    if let Some(s) = text {
        return format!("\"{}\"", s.replace('"', "\"\""));
    }
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let run = bytes[i..].iter().take_while(|b| (0x20..0x7F).contains(*b)).count();
        if run > 0 {
            let s = std::str::from_utf8(&bytes[i..i + run]).expect("ASCII");
            parts.push(format!("\"{}\"", s.replace('"', "\"\"")));
            i += run;
        } else {
            let n = bytes[i..].iter().take_while(|b| !(0x20..0x7F).contains(*b)).count();
            let codes: Vec<String> = bytes[i..i + n].iter().map(|b| b.to_string()).collect();
            parts.push(format!("$c({})", codes.join(",")));
            i += n;
        }
    }
    parts.join("_")
}

/// `[+-]? (digits [. digits*] | . digits) ([eE] [+-]? digits)?`, all of it.
fn is_number_literal(s: &[u8]) -> bool {
    let s = s.strip_prefix(b"-").or_else(|| s.strip_prefix(b"+")).unwrap_or(s);
    let digits = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
    let int = digits(s);
    let mut rest = &s[int..];
    let mut frac = 0;
    if let Some(r) = rest.strip_prefix(b".") {
        frac = digits(r);
        rest = &r[frac..];
    }
    if int + frac == 0 {
        return false;
    }
    if let Some(r) = rest.strip_prefix(b"E").or_else(|| rest.strip_prefix(b"e")) {
        let r = r.strip_prefix(b"-").or_else(|| r.strip_prefix(b"+")).unwrap_or(r);
        let exp = digits(r);
        return exp > 0 && exp == r.len();
    }
    rest.is_empty()
}

struct Parser<'a> {
    input: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, reason: &str) -> GlobalsError {
        GlobalsError::Syntax { input: self.input.to_string(), column: self.pos + 1, reason: reason.into() }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn reference(&mut self) -> Result<GlobalRef, GlobalsError> {
        self.skip_spaces();
        if !self.eat(b'^') {
            return Err(self.error("a global reference starts with ^"));
        }
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == b'%' || c == b'.' {
                self.pos += 1;
            } else {
                break;
            }
        }
        let name = &self.input[start..self.pos];
        if name.is_empty() {
            return Err(self.error("expected a global name after ^"));
        }
        validate_name(name)?;
        let mut subscripts = Vec::new();
        if self.eat(b'(') {
            loop {
                let value = self.concatenation()?;
                subscripts.push(Subscript::from_bytes(value, subscripts.len() + 1)?);
                self.skip_spaces();
                if self.eat(b')') {
                    break;
                }
                if !self.eat(b',') {
                    return Err(self.error("expected , or ) after a subscript"));
                }
            }
        }
        GlobalRef::new(name, subscripts)
    }

    fn concatenation(&mut self) -> Result<Vec<u8>, GlobalsError> {
        let mut value = self.term()?;
        loop {
            self.skip_spaces();
            if !self.eat(b'_') {
                return Ok(value);
            }
            value.extend(self.term()?);
        }
    }

    fn term(&mut self) -> Result<Vec<u8>, GlobalsError> {
        self.skip_spaces();
        match self.peek() {
            Some(b'"') => self.string(),
            Some(b'$') => self.char_function(),
            Some(c) if c.is_ascii_digit() || c == b'-' || c == b'+' || c == b'.' => {
                let start = self.pos;
                while let Some(c) = self.peek() {
                    let sign_after_e = (c == b'-' || c == b'+')
                        && matches!(self.bytes.get(self.pos.wrapping_sub(1)), Some(b'E' | b'e'));
                    if c.is_ascii_digit()
                        || c == b'.'
                        || c == b'E'
                        || c == b'e'
                        || sign_after_e
                        || (self.pos == start && (c == b'-' || c == b'+'))
                    {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                let literal = &self.bytes[start..self.pos];
                if !is_number_literal(literal) {
                    self.pos = start;
                    return Err(self.error(
                        "not a number: a subscript number is digits with an optional sign, fraction and exponent",
                    ));
                }
                match Number::parse_in_range(literal) {
                    Some(n) => Ok(n.to_canonical().into_bytes()),
                    None => Err(GlobalsError::MaxNumber { literal: String::from_utf8_lossy(literal).into_owned() }),
                }
            }
            _ => Err(self.error("expected a subscript: a \"string\", a number or $c(...)")),
        }
    }

    fn string(&mut self) -> Result<Vec<u8>, GlobalsError> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    if self.eat(b'"') {
                        out.push(b'"');
                    } else {
                        return Ok(out);
                    }
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn char_function(&mut self) -> Result<Vec<u8>, GlobalsError> {
        let rest = &self.input[self.pos..];
        let upper = rest.get(..6).unwrap_or(rest).to_ascii_uppercase();
        let len = if upper.starts_with("$CHAR(") {
            6
        } else if upper.starts_with("$C(") {
            3
        } else {
            return Err(self.error("only $c(...) may appear in a subscript literal"));
        };
        self.pos += len;
        let mut out = Vec::new();
        loop {
            self.skip_spaces();
            let start = self.pos;
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.pos += 1;
            }
            let code: u32 = self.input[start..self.pos].parse().map_err(|_| self.error("expected a character code"))?;
            let code = u8::try_from(code).map_err(|_| self.error("character codes above 255 are not supported"))?;
            out.push(code);
            self.skip_spaces();
            if self.eat(b')') {
                return Ok(out);
            }
            if !self.eat(b',') {
                return Err(self.error("expected , or ) in $c(...)"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_formats() {
        for (input, formatted) in [
            ("^a", "^a"),
            ("^Company(1,\"name\")", "^Company(1,\"name\")"),
            ("^a( 01 , \"1\" ,\"x\"\"y\")", "^a(1,1,\"x\"\"y\")"),
            ("^a(-1.50,.5,1E3)", "^a(-1.5,.5,1000)"),
            ("^a(\"a\"_$c(0,1)_\"b\")", "^a(\"a\"_$c(0,1)_\"b\")"),
            ("^%sys.x(\"k\")", "^%sys.x(\"k\")"),
        ] {
            let r = parse(input).unwrap();
            assert_eq!(format(&r), formatted, "input {input}");
            assert_eq!(parse(&format(&r)).unwrap(), r);
        }
    }

    #[test]
    fn errors_say_where() {
        let e = parse("^a(1,)").unwrap_err();
        assert_eq!(e.code(), "SYNTAX");
        assert!(e.to_string().contains("column 6"), "{e}");
        assert!(matches!(parse("^a(\"\")"), Err(GlobalsError::EmptySubscript { index: 1 })));
        assert!(matches!(parse("^1a"), Err(GlobalsError::Syntax { .. }) | Err(GlobalsError::BadName { .. })));
        assert!(parse("^a(1))").is_err());
        for junk in ["^a(.)", "^a(-)", "^a(+)", "^a(1.2.3)", "^a(1E5E5)", "^a(1e)", "^a(--1)"] {
            assert_eq!(parse(junk).map_err(|e| e.code()), Err("SYNTAX"), "{junk}");
        }
        for fine in ["^a(1.)", "^a(.5)", "^a(-.5)", "^a(+3)", "^a(1E3)", "^a(1e-2)"] {
            assert!(parse(fine).is_ok(), "{fine}");
        }
        assert!(parse("^a(\"x").is_err());
        assert!(matches!(parse(&format!("^{}", "a".repeat(32))), Err(GlobalsError::NameTooLong { .. })));
        // Regression: numbers beyond the range saturated, so ^n(1e300) and ^n(1e500) were
        // the same node.
        assert!(parse("^n(1e300)").is_ok());
        assert!(parse(&format!("^n({}e264)", "9".repeat(36))).is_ok());
        for big in ["1e301", "1e500", "-1e500", "10e300", "1e3000000"] {
            let e = parse(&format!("^n({big})")).unwrap_err();
            assert_eq!(e.code(), "MAXNUMBER", "{big}: {e}");
        }
        assert_ne!(parse("^n(1e300)").unwrap(), parse("^n(1e299)").unwrap());
    }

    #[test]
    fn bare_keys_map_onto_globals() {
        assert_eq!(format(&parse_key(b"foo").unwrap()), "^foo");
        assert_eq!(format(&parse_key(b"user:1000:name").unwrap()), "^user(1000,\"name\")");
        assert_eq!(format(&parse_key(b"key:000000012345").unwrap()), "^key(\"000000012345\")");
        assert!(parse_key(b"a::b").is_err());
        assert!(parse_key(b"my-key").is_err());
        assert_eq!(format(&parse_key(b"^x(1)").unwrap()), "^x(1)");
    }

    proptest! {
        // Seeded, so a run is reproducible (PROPTEST_CASES / PROPTEST_RNG_SEED vary it).
        #![proptest_config(crate::fuzz::config(256, 0x52454631))]
        #[test]
        fn any_subscript_bytes_round_trip(bytes in prop::collection::vec(any::<u8>(), 1..12)) {
            let r = GlobalRef::new("g", vec![Subscript::from_bytes(bytes, 1).unwrap()]).unwrap();
            prop_assert_eq!(parse(&format(&r)).unwrap(), r);
        }
    }
}

/// Parses `$ORDER`'s argument as a RESP client sends it: a key whose last subscript may be
/// the empty string, `^a("")` or `^a(1,"")` (bare keys: `a:` or `a:1:`), meaning "start
/// from the first (or last) subscript". Returns the parent and the last subscript, `None`
/// when it is `""`. Only the last subscript may be empty, and there must be one.
pub fn parse_order_arg(key: &[u8]) -> Result<(GlobalRef, Option<Subscript>), GlobalsError> {
    let no_subscript = |input: &[u8]| GlobalsError::Syntax {
        input: String::from_utf8_lossy(input).into_owned(),
        column: input.len() + 1,
        reason: "ORDER needs a subscript to start from (^a(\"\") starts from the first)".into(),
    };
    let mut raw: Vec<Vec<u8>> = Vec::new();
    let name: String;
    if key.first() == Some(&b'^') {
        let input = std::str::from_utf8(key).map_err(|_| GlobalsError::Syntax {
            input: String::from_utf8_lossy(key).into_owned(),
            column: 1,
            reason: "reference is not valid UTF-8 (use $c(...) for other bytes)".into(),
        })?;
        let mut p = Parser { input, bytes: input.as_bytes(), pos: 1 };
        let start = p.pos;
        while p.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == b'%' || c == b'.') {
            p.pos += 1;
        }
        name = input[start..p.pos].to_string();
        if name.is_empty() {
            return Err(p.error("expected a global name after ^"));
        }
        validate_name(&name)?;
        if p.eat(b'(') {
            loop {
                raw.push(p.concatenation()?);
                p.skip_spaces();
                if p.eat(b')') {
                    break;
                }
                if !p.eat(b',') {
                    return Err(p.error("expected , or ) after a subscript"));
                }
            }
        }
        p.skip_spaces();
        if p.pos != p.bytes.len() {
            return Err(p.error("unexpected text after the reference"));
        }
    } else {
        let mut parts = key.split(|&b| b == b':');
        let first = parts.next().unwrap_or_default();
        name = std::str::from_utf8(first)
            .map_err(|_| GlobalsError::BadName { name: String::from_utf8_lossy(first).into_owned() })?
            .to_string();
        raw.extend(parts.map(<[u8]>::to_vec));
    }
    let Some(last) = raw.pop() else { return Err(no_subscript(key)) };
    let count = raw.len();
    let subscripts =
        raw.into_iter().enumerate().map(|(i, s)| Subscript::from_bytes(s, i + 1)).collect::<Result<Vec<_>, _>>()?;
    let parent = GlobalRef::new(name, subscripts)?;
    if last.is_empty() {
        return Ok((parent, None));
    }
    let last = Subscript::from_bytes(last, count + 1)?;
    // Checks the subscript count of the whole reference.
    parent.child(last.clone())?;
    Ok((parent, Some(last)))
}

#[cfg(test)]
mod order_arg_tests {
    use super::*;

    fn order(s: &str) -> Result<(String, Option<Subscript>), GlobalsError> {
        parse_order_arg(s.as_bytes()).map(|(p, s)| (format(&p), s))
    }

    #[test]
    fn an_empty_last_subscript_starts_from_the_end() {
        assert_eq!(order("^a(\"\")").unwrap(), ("^a".into(), None));
        assert_eq!(order("^a(1, \"\" )").unwrap(), ("^a(1)".into(), None));
        assert_eq!(order("^a(1,\"x\")").unwrap(), ("^a(1)".into(), Some(Subscript::String(b"x".to_vec()))));
        assert_eq!(order("^a(\"01\")").unwrap(), ("^a".into(), Some(Subscript::String(b"01".to_vec()))));
        assert_eq!(order("^a(1E1)").unwrap(), ("^a".into(), Some(Subscript::Number("10".into()))));
        assert_eq!(order("a:").unwrap(), ("^a".into(), None));
        assert_eq!(order("user:1:").unwrap(), ("^user(1)".into(), None));
        assert_eq!(order("user:1:x").unwrap(), ("^user(1)".into(), Some(Subscript::String(b"x".to_vec()))));
    }

    #[test]
    fn only_the_last_subscript_may_be_empty() {
        assert!(matches!(order("^a(\"\",1)"), Err(GlobalsError::EmptySubscript { index: 1 })));
        assert!(matches!(order("a::1"), Err(GlobalsError::EmptySubscript { index: 1 })));
        assert_eq!(order("^a").unwrap_err().code(), "SYNTAX");
        assert_eq!(order("a").unwrap_err().code(), "SYNTAX");
        assert_eq!(order("^a(1").unwrap_err().code(), "SYNTAX");
        assert_eq!(order("^a(1)x").unwrap_err().code(), "SYNTAX");
        assert_eq!(order("^(1)").unwrap_err().code(), "SYNTAX");
        let deep = format!("^a({})", vec!["1"; 64].join(","));
        assert_eq!(order(&deep).unwrap_err().code(), "SUBSCRIPT");
    }
}
