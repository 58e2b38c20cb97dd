//! Command execution. A line runs left to right; IF/ELSE with a false condition skip the
//! rest of the line; FOR runs the rest of the line once per value; QUIT leaves the
//! innermost FOR (or the line); an error stops the line.

use super::ast::{Cmd, Command, ForParam, SetTarget, VarRef, WriteArg};
use super::backend::Backend;
use super::error::TermError;
use super::functions as f;
use super::limits::MAX_WIDTH;
use super::value::{from_num, int, num, truth};
use super::Terminal;
use crate::globals::limits::MAX_VALUE_BYTES;
use crate::globals::Number;

/// How a run of commands ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ctl {
    /// Ran to the end, or skipped its rest by IF/ELSE.
    Done,
    Quit,
    Halt,
}

impl<B: Backend> Terminal<B> {
    pub(crate) fn exec(&mut self, cmds: &[Command], out: &mut dyn std::io::Write) -> Result<Ctl, TermError> {
        for (i, cmd) in cmds.iter().enumerate() {
            if let Some(post) = &cmd.post {
                if !truth(&self.eval(post)?) {
                    continue;
                }
            }
            match &cmd.kind {
                Cmd::Set(args) => {
                    for arg in args {
                        self.set_arg(&arg.targets, &arg.value)?;
                    }
                }
                Cmd::Write(None) | Cmd::ZWrite(None) => self.list_locals(out)?,
                Cmd::Write(Some(args)) => {
                    for arg in args {
                        self.write_arg(arg, out)?;
                    }
                }
                Cmd::ZWrite(Some(refs)) => {
                    for v in refs {
                        let res = self.resolve(v)?;
                        let r = res.to_ref()?;
                        self.zwrite(&r, res.global, out)?;
                    }
                }
                Cmd::Kill(None) => self.locals.clear(),
                Cmd::Kill(Some(refs)) => {
                    for v in refs {
                        let res = self.resolve(v)?;
                        let r = res.to_ref()?;
                        self.node_kill(&r, res.global)?;
                    }
                }
                Cmd::ZKill(refs) => {
                    for v in refs {
                        let res = self.resolve(v)?;
                        let r = res.to_ref()?;
                        self.node_zkill(&r, res.global)?;
                    }
                }
                Cmd::ZNspace(e) => {
                    let ns = self.eval(e)?;
                    self.backend.set_namespace(&String::from_utf8_lossy(&ns))?;
                    self.namespace = self.backend.namespace()?;
                }
                Cmd::TStart => self.tlevel = self.backend.tstart()?,
                Cmd::TCommit => {
                    self.backend.tcommit()?;
                    self.tlevel = self.tlevel.saturating_sub(1);
                }
                Cmd::TRollback => {
                    self.backend.trollback()?;
                    self.tlevel = 0;
                }
                Cmd::Halt => return Ok(Ctl::Halt),
                Cmd::Quit => return Ok(Ctl::Quit),
                Cmd::If(None) => {
                    if !self.test {
                        return Ok(Ctl::Done);
                    }
                }
                Cmd::If(Some(conds)) => {
                    for c in conds {
                        self.test = truth(&self.eval(c)?);
                        if !self.test {
                            return Ok(Ctl::Done);
                        }
                    }
                }
                Cmd::Else => {
                    if self.test {
                        return Ok(Ctl::Done);
                    }
                }
                Cmd::For(spec) => {
                    let body = &cmds[i + 1..];
                    return match spec {
                        None => loop {
                            match self.exec(body, out)? {
                                Ctl::Done => {}
                                Ctl::Quit => return Ok(Ctl::Done),
                                Ctl::Halt => return Ok(Ctl::Halt),
                            }
                        },
                        Some((var, params)) => self.for_loop(var, params, body, out),
                    };
                }
            }
        }
        Ok(Ctl::Done)
    }

    fn for_loop(
        &mut self,
        var: &VarRef,
        params: &[ForParam],
        body: &[Command],
        out: &mut dyn std::io::Write,
    ) -> Result<Ctl, TermError> {
        for p in params {
            let start = self.eval(&p.start)?;
            let Some(step) = &p.step else {
                self.assign(var, &start)?;
                match self.exec(body, out)? {
                    Ctl::Done => continue,
                    Ctl::Quit => return Ok(Ctl::Done),
                    Ctl::Halt => return Ok(Ctl::Halt),
                }
            };
            let step = num(&self.eval(step)?);
            let end = p.end.as_ref().map(|e| self.eval(e)).transpose()?.map(|e| num(&e));
            let mut v = num(&start);
            loop {
                if let Some(end) = end {
                    let past = if step < Number::ZERO { v < end } else { v > end };
                    if past {
                        break;
                    }
                }
                self.assign(var, &from_num(v))?;
                match self.exec(body, out)? {
                    Ctl::Done => {}
                    Ctl::Quit => return Ok(Ctl::Done),
                    Ctl::Halt => return Ok(Ctl::Halt),
                }
                v = v.add(step);
            }
        }
        Ok(Ctl::Done)
    }

    fn assign(&mut self, var: &VarRef, value: &[u8]) -> Result<(), TermError> {
        let res = self.resolve(var)?;
        let r = res.to_ref()?;
        self.node_set(&r, res.global, value)
    }

    fn set_arg(&mut self, targets: &[SetTarget], value: &crate::terminal::ast::Expr) -> Result<(), TermError> {
        // Left-hand subscripts first, then the value, as ObjectScript evaluates SET.
        enum Ready {
            Var(super::store::Resolved),
            Piece(super::store::Resolved, Vec<u8>, i64, i64),
            Extract(super::store::Resolved, i64, i64),
        }
        let mut ready = Vec::with_capacity(targets.len());
        for t in targets {
            ready.push(match t {
                SetTarget::Var(v) => Ready::Var(self.resolve(v)?),
                SetTarget::Piece { var, delim, from, to } => {
                    let res = self.resolve(var)?;
                    let d = self.eval(delim)?;
                    let from = from.as_ref().map(|e| self.eval(e)).transpose()?.map(|v| int(&v)).unwrap_or(1);
                    let to = to.as_ref().map(|e| self.eval(e)).transpose()?.map(|v| int(&v)).unwrap_or(from);
                    Ready::Piece(res, d, from, to)
                }
                SetTarget::Extract { var, from, to } => {
                    let res = self.resolve(var)?;
                    let from = from.as_ref().map(|e| self.eval(e)).transpose()?.map(|v| int(&v)).unwrap_or(1);
                    let to = to.as_ref().map(|e| self.eval(e)).transpose()?.map(|v| int(&v)).unwrap_or(from);
                    Ready::Extract(res, from, to)
                }
            });
        }
        let value = self.eval(value)?;
        for t in ready {
            match t {
                Ready::Var(res) => {
                    let r = res.to_ref()?;
                    self.node_set(&r, res.global, &value)?;
                }
                Ready::Piece(res, d, from, to) => {
                    let r = res.to_ref()?;
                    let old = self.node_get(&r, res.global)?.unwrap_or_default();
                    self.node_set(&r, res.global, &f::set_piece(&old, &d, from, to, &value))?;
                }
                Ready::Extract(res, from, to) => {
                    let r = res.to_ref()?;
                    let old = self.node_get(&r, res.global)?.unwrap_or_default();
                    if from > MAX_VALUE_BYTES as i64 {
                        return Err(TermError::new("MAXSTRING", format!("$EXTRACT position {from}")));
                    }
                    self.node_set(&r, res.global, &f::set_extract(&old, from, to, &value))?;
                }
            }
        }
        Ok(())
    }

    fn write_arg(&mut self, arg: &WriteArg, out: &mut dyn std::io::Write) -> Result<(), TermError> {
        match arg {
            WriteArg::NewLine => self.put(out, b"\n"),
            WriteArg::Clear => {
                let clear: &[u8] = if self.interactive { b"\x1b[H\x1b[2J" } else { b"\x0c" };
                self.put(out, clear)?;
                self.column = 0;
                self.row = 0;
                Ok(())
            }
            WriteArg::Column(e) => {
                let target = int(&self.eval(e)?).min(MAX_WIDTH);
                if target > self.column as i64 {
                    let pad = vec![b' '; (target - self.column as i64) as usize];
                    self.put(out, &pad)?;
                }
                Ok(())
            }
            WriteArg::Expr(e) => {
                let v = self.eval(e)?;
                self.put(out, &v)
            }
        }
    }
}
