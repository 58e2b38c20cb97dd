//! Splits one terminal line into tokens. Spaces are significant in ObjectScript (they
//! separate commands from arguments and commands from each other), so every token records
//! how many spaces came before it. `;` and `//` outside a string end the line.

use super::error::TermError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tok {
    /// A name: command word, local variable, `class` ... (`%` allowed first).
    Name(String),
    /// `^name`: a global.
    Global(String),
    /// `$name`: an intrinsic function or special variable.
    Dollar(String),
    /// `##class`.
    Class,
    Str(Vec<u8>),
    /// A numeric literal as written (`1.5E3`).
    Num(String),
    /// Operators and punctuation, one or two characters (`**`, `]]`, `<=`, `>=`).
    Op(&'static str),
    End,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub tok: Tok,
    /// Byte offset in the line, for error messages.
    pub pos: usize,
    /// Spaces (or tabs) between the previous token and this one.
    pub spaces: u32,
}

const OPS: &[&str] = &[
    "**", "]]", "<=", ">=", "(", ")", ",", ":", "=", "+", "-", "*", "/", "\\", "#", "_", "<", ">", "[", "]", "&", "!",
    "'", "?", ".", "@",
];

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'%'
}

pub fn tokenize(line: &str) -> Result<Vec<Token>, TermError> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let mut spaces = 0u32;
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            spaces += 1;
            i += 1;
        }
        let pos = i;
        if i >= b.len() || b[i] == b';' || b[i..].starts_with(b"//") || b[i] == b'\r' || b[i] == b'\n' {
            out.push(Token { tok: Tok::End, pos, spaces });
            return Ok(out);
        }
        let c = b[i];
        let tok = if c == b'"' {
            let mut s = Vec::new();
            i += 1;
            loop {
                match b.get(i) {
                    None => return Err(TermError::syntax(pos, "string is not closed")),
                    Some(b'"') if b.get(i + 1) == Some(&b'"') => {
                        s.push(b'"');
                        i += 2;
                    }
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(&c) => {
                        s.push(c);
                        i += 1;
                    }
                }
            }
            Tok::Str(s)
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i < b.len() && b[i] == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
            if i < b.len() && (b[i] == b'E' || b[i] == b'e') {
                let mut j = i + 1;
                if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
                    j += 1;
                }
                if b.get(j).is_some_and(u8::is_ascii_digit) {
                    i = j;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            Tok::Num(line[start..i].to_string())
        } else if is_name_start(c) {
            let start = i;
            i += 1;
            while i < b.len() && b[i].is_ascii_alphanumeric() {
                i += 1;
            }
            Tok::Name(line[start..i].to_string())
        } else if c == b'^' && b.get(i + 1).is_some_and(|&c| is_name_start(c)) {
            let start = i + 1;
            i += 2;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric()
                    || (b[i] == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_alphanumeric)))
            {
                i += 1;
            }
            Tok::Global(line[start..i].to_string())
        } else if c == b'$' && b.get(i + 1).is_some_and(|&c| c.is_ascii_alphabetic()) {
            let start = i + 1;
            i += 2;
            while i < b.len() && b[i].is_ascii_alphanumeric() {
                i += 1;
            }
            Tok::Dollar(line[start..i].to_string())
        } else if b[i..].starts_with(b"##") && b.get(i + 2..i + 7).is_some_and(|w| w.eq_ignore_ascii_case(b"class")) {
            i += 7;
            Tok::Class
        } else if let Some(op) = OPS.iter().find(|op| b[i..].starts_with(op.as_bytes())) {
            i += op.len();
            Tok::Op(op)
        } else {
            let ch = line[i..].chars().next().unwrap_or('?');
            return Err(TermError::syntax(pos, format!("unexpected character {ch:?}")));
        };
        out.push(Token { tok, pos, spaces });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn tokens() {
        assert_eq!(
            toks("s ^x(1)=\"a\"\"b\"_$zdt($h) ; note"),
            vec![
                Tok::Name("s".into()),
                Tok::Global("x".into()),
                Tok::Op("("),
                Tok::Num("1".into()),
                Tok::Op(")"),
                Tok::Op("="),
                Tok::Str(b"a\"b".to_vec()),
                Tok::Op("_"),
                Tok::Dollar("zdt".into()),
                Tok::Op("("),
                Tok::Dollar("h".into()),
                Tok::Op(")"),
                Tok::End,
            ]
        );
        assert_eq!(
            toks("w 2**3]]1.5e2 // c"),
            vec![
                Tok::Name("w".into()),
                Tok::Num("2".into()),
                Tok::Op("**"),
                Tok::Num("3".into()),
                Tok::Op("]]"),
                Tok::Num("1.5e2".into()),
                Tok::End
            ]
        );
        assert_eq!(toks("##CLASS(%SYSTEM.INetInfo)")[..3], [Tok::Class, Tok::Op("("), Tok::Name("%SYSTEM".into())]);
        let t = tokenize("w  x").unwrap();
        assert_eq!(t[1].spaces, 2);
        assert_eq!(toks("s ^a.b=1")[1], Tok::Global("a.b".into()));
    }

    #[test]
    fn errors() {
        assert_eq!(tokenize("w \"abc").unwrap_err().code, "SYNTAX");
        assert_eq!(tokenize("w {").unwrap_err().code, "SYNTAX");
    }
}
