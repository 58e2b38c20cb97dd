//! ZWRITE: a node and its whole subtree as `^x(1)="a"` lines in collation order, values
//! formatted with [`format_value`] so every line can be typed back as a SET.

use super::backend::Backend;
use super::error::TermError;
use super::store::ref_text;
use super::Terminal;
use crate::globals::reference::format_value;
use crate::globals::GlobalRef;

impl<B: Backend> Terminal<B> {
    fn zwrite_line(
        &mut self,
        r: &GlobalRef,
        global: bool,
        value: &[u8],
        out: &mut dyn std::io::Write,
    ) -> Result<(), TermError> {
        let line = format!("{}={}\n", ref_text(r, global), format_value(value));
        self.put(out, line.as_bytes())
    }

    /// Prints `r` (if it has a value) and every descendant holding a value.
    pub(crate) fn zwrite(
        &mut self,
        r: &GlobalRef,
        global: bool,
        out: &mut dyn std::io::Write,
    ) -> Result<(), TermError> {
        if let Some(v) = self.node_get(r, global)? {
            self.zwrite_line(r, global, &v, out)?;
        }
        let mut at = r.clone();
        while let Some(next) = self.node_query(&at, global, false)? {
            if next.name != r.name || !next.subscripts.starts_with(&r.subscripts) {
                break;
            }
            if let Some(v) = self.node_get(&next, global)? {
                self.zwrite_line(&next, global, &v, out)?;
            }
            at = next;
        }
        Ok(())
    }

    /// Argumentless WRITE and ZWRITE: every local variable node.
    pub(crate) fn list_locals(&mut self, out: &mut dyn std::io::Write) -> Result<(), TermError> {
        let nodes: Vec<(GlobalRef, Vec<u8>)> = self.locals.entries().map(|(r, v)| (r, v.to_vec())).collect();
        for (r, v) in nodes {
            self.zwrite_line(&r, false, &v, out)?;
        }
        Ok(())
    }
}
