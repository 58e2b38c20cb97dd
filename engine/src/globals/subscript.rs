//! Subscripts and global references as values (no syntax, no encoding).

use super::error::GlobalsError;
use super::limits::{MAX_NAME_LEN, MAX_SUBSCRIPTS};
use super::number::is_canonical_number;

/// One subscript. A string that is a canonical number *is* that number (`^a("1")` and
/// `^a(1)` are the same node), so the constructor decides the variant, never the caller.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Subscript {
    /// A canonical number, kept as its canonical text.
    Number(String),
    /// Any other non-empty byte string.
    String(Vec<u8>),
}

impl Subscript {
    /// Classifies raw bytes; `""` is rejected as in the reference product.
    pub fn from_bytes(bytes: Vec<u8>, index: usize) -> Result<Subscript, GlobalsError> {
        if bytes.is_empty() {
            return Err(GlobalsError::EmptySubscript { index });
        }
        if is_canonical_number(&bytes) {
            // Canonical numbers are ASCII by construction.
            Ok(Subscript::Number(String::from_utf8(bytes).expect("canonical numbers are ASCII")))
        } else {
            Ok(Subscript::String(bytes))
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Subscript::Number(n) => n.as_bytes(),
            Subscript::String(s) => s,
        }
    }
}

/// `^Name(sub1, sub2, ...)`: a node of a global tree.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GlobalRef {
    pub name: String,
    pub subscripts: Vec<Subscript>,
}

impl GlobalRef {
    /// Checks the name and subscript count; the encoded length is checked by
    /// [`super::key::encode`].
    pub fn new(name: impl Into<String>, subscripts: Vec<Subscript>) -> Result<GlobalRef, GlobalsError> {
        let name = name.into();
        validate_name(&name)?;
        if subscripts.len() > MAX_SUBSCRIPTS {
            return Err(GlobalsError::TooManySubscripts { count: subscripts.len(), max: MAX_SUBSCRIPTS });
        }
        Ok(GlobalRef { name, subscripts })
    }

    /// The reference one level up, or `None` at the top of the global.
    pub fn parent(&self) -> Option<GlobalRef> {
        let mut subscripts = self.subscripts.clone();
        subscripts.pop()?;
        Some(GlobalRef { name: self.name.clone(), subscripts })
    }

    /// The same reference with one more subscript.
    pub fn child(&self, s: Subscript) -> Result<GlobalRef, GlobalsError> {
        let mut subscripts = self.subscripts.clone();
        subscripts.push(s);
        GlobalRef::new(self.name.clone(), subscripts)
    }
}

/// Global names: a letter or `%`, then letters, digits or dots, at most 31 characters.
pub fn validate_name(name: &str) -> Result<(), GlobalsError> {
    let b = name.as_bytes();
    let ok = !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'%')
        && b[1..].iter().all(|c| c.is_ascii_alphanumeric() || *c == b'.')
        && b[b.len() - 1] != b'.';
    if !ok {
        return Err(GlobalsError::BadName { name: name.to_string() });
    }
    if b.len() > MAX_NAME_LEN {
        return Err(GlobalsError::NameTooLong { name: name.to_string(), max: MAX_NAME_LEN });
    }
    Ok(())
}
