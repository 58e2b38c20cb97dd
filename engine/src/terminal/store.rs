//! One set of node operations over both kinds of variable: globals go to the
//! [`Backend`], locals to the session's own [`Tree`]. Also turns evaluated subscripts into
//! references, and references into the text errors and `$QUERY` show.

use super::backend::Backend;
use super::error::TermError;
use super::limits::MAX_LOCAL_NODES;
use super::Terminal;
use crate::globals::reference::{format, format_value};
use crate::globals::{GlobalRef, Number, Subscript};

/// A reference whose subscripts are evaluated but not yet checked (one may be `""`).
#[derive(Clone, Debug)]
pub struct Resolved {
    pub global: bool,
    pub name: String,
    pub subs: Vec<Vec<u8>>,
}

impl Resolved {
    /// `^x(1,"a")` for a global, `x(1,"a")` for a local.
    pub fn display(&self) -> String {
        let mut s = String::new();
        if self.global {
            s.push('^');
        }
        s.push_str(&self.name);
        if !self.subs.is_empty() {
            let subs: Vec<String> = self.subs.iter().map(|v| format_value(v)).collect();
            s.push('(');
            s.push_str(&subs.join(","));
            s.push(')');
        }
        s
    }

    /// The `<UNDEFINED>` detail: `^x(1)` for a global, `*x(1)` for a local.
    pub fn undefined(&self) -> TermError {
        let d = self.display();
        TermError::new("UNDEFINED", if self.global { d } else { format!("*{d}") })
    }

    /// The checked reference; `""` or too many subscripts is `<SUBSCRIPT>`.
    pub fn to_ref(&self) -> Result<GlobalRef, TermError> {
        let subs = self
            .subs
            .iter()
            .enumerate()
            .map(|(i, s)| Subscript::from_bytes(s.clone(), i + 1))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| TermError::new("SUBSCRIPT", self.display()))?;
        GlobalRef::new(self.name.clone(), subs)
            .map_err(|e| TermError::new(e.code(), format!("{}: {e}", self.display())))
    }
}

/// A reference as text: `^x(1)` for a global, `x(1)` for a local.
pub fn ref_text(r: &GlobalRef, global: bool) -> String {
    let s = format(r);
    if global {
        s
    } else {
        s[1..].to_string()
    }
}

impl<B: Backend> Terminal<B> {
    fn check_local_room(&self) -> Result<(), TermError> {
        if self.locals.len() >= MAX_LOCAL_NODES {
            return Err(TermError::new("STORE", format!("more than {MAX_LOCAL_NODES} local variable nodes")));
        }
        Ok(())
    }

    pub(crate) fn node_get(&mut self, r: &GlobalRef, global: bool) -> Result<Option<Vec<u8>>, TermError> {
        if global {
            Ok(self.backend.get(r)?)
        } else {
            Ok(self.locals.get(r)?)
        }
    }

    pub(crate) fn node_set(&mut self, r: &GlobalRef, global: bool, v: &[u8]) -> Result<(), TermError> {
        if global {
            Ok(self.backend.set(r, v)?)
        } else {
            self.check_local_room()?;
            Ok(self.locals.set(r, v)?)
        }
    }

    pub(crate) fn node_kill(&mut self, r: &GlobalRef, global: bool) -> Result<(), TermError> {
        if global {
            Ok(self.backend.kill(r)?)
        } else {
            Ok(self.locals.kill(r)?)
        }
    }

    pub(crate) fn node_zkill(&mut self, r: &GlobalRef, global: bool) -> Result<(), TermError> {
        if global {
            Ok(self.backend.zkill(r)?)
        } else {
            Ok(self.locals.zkill(r)?)
        }
    }

    pub(crate) fn node_data(&mut self, r: &GlobalRef, global: bool) -> Result<u8, TermError> {
        if global {
            Ok(self.backend.data(r)?)
        } else {
            Ok(self.locals.data(r)?)
        }
    }

    pub(crate) fn node_order(
        &mut self,
        parent: &GlobalRef,
        global: bool,
        after: Option<&Subscript>,
        backward: bool,
    ) -> Result<Option<Subscript>, TermError> {
        if global {
            Ok(self.backend.order(parent, after, backward)?)
        } else {
            Ok(self.locals.order(parent, after, backward)?)
        }
    }

    pub(crate) fn node_query(
        &mut self,
        r: &GlobalRef,
        global: bool,
        backward: bool,
    ) -> Result<Option<GlobalRef>, TermError> {
        if global {
            Ok(self.backend.query(r, backward)?)
        } else {
            Ok(self.locals.query(r, backward)?)
        }
    }

    pub(crate) fn node_increment(&mut self, r: &GlobalRef, global: bool, by: Number) -> Result<Number, TermError> {
        if global {
            Ok(self.backend.increment(r, by)?)
        } else {
            self.check_local_room()?;
            Ok(self.locals.increment(r, by)?)
        }
    }
}
