//! Expression evaluation: operands, strictly left-to-right binary operators, intrinsic
//! functions and special variables.

use super::ast::{BinKind, BinOp, Expr, Func, Special, UnOp, VarRef};
use super::backend::Backend;
use super::datetime;
use super::error::TermError;
use super::functions as f;
use super::store::{ref_text, Resolved};
use super::value::{collate, from_bool, from_int, from_num, int, num, pow, truth};
use super::Terminal;
use crate::globals::limits::MAX_VALUE_BYTES;
use crate::globals::{GlobalRef, Number, Subscript};
use std::cmp::Ordering;

fn check_len(v: Vec<u8>) -> Result<Vec<u8>, TermError> {
    if v.len() > MAX_VALUE_BYTES {
        return Err(TermError::new("MAXSTRING", format!("{} bytes is more than {MAX_VALUE_BYTES}", v.len())));
    }
    Ok(v)
}

fn binary(op: BinOp, a: Vec<u8>, b: &[u8]) -> Result<Vec<u8>, TermError> {
    let divide = || TermError::new("DIVIDE", "");
    // A result beyond the engine's range is <MAXNUMBER>, never a saturated number.
    let maxnumber = || TermError::new("MAXNUMBER", "the result is beyond 36 significant digits times 10^300");
    let logical = match op.kind {
        BinKind::Add => return Ok(from_num(num(&a).checked_add(num(b)).ok_or_else(maxnumber)?)),
        BinKind::Sub => return Ok(from_num(num(&a).checked_sub(num(b)).ok_or_else(maxnumber)?)),
        BinKind::Mul => return Ok(from_num(num(&a).checked_mul(num(b)).ok_or_else(maxnumber)?)),
        BinKind::Div => {
            let divisor = num(b);
            if divisor.is_zero() {
                return Err(divide());
            }
            return Ok(from_num(num(&a).checked_div(divisor).ok_or_else(maxnumber)?));
        }
        BinKind::IntDiv => return Ok(from_num(num(&a).int_div(num(b)).ok_or_else(divide)?)),
        BinKind::Mod => return Ok(from_num(num(&a).modulo(num(b)).ok_or_else(divide)?)),
        BinKind::Pow => return Ok(from_num(pow(num(&a), num(b))?)),
        BinKind::Concat => {
            let mut a = a;
            a.extend_from_slice(b);
            return check_len(a);
        }
        BinKind::Eq => a == b,
        BinKind::Lt => num(&a) < num(b),
        BinKind::Gt => num(&a) > num(b),
        BinKind::Le => num(&a) <= num(b),
        BinKind::Ge => num(&a) >= num(b),
        BinKind::Contains => a.windows(b.len().max(1)).any(|w| w == b) || b.is_empty(),
        BinKind::Follows => a.as_slice() > b,
        BinKind::SortsAfter => collate(&a, b) == Ordering::Greater,
        BinKind::And => truth(&a) && truth(b),
        BinKind::Or => truth(&a) || truth(b),
    };
    Ok(from_bool(logical != op.negated))
}

impl<B: Backend> Terminal<B> {
    pub(crate) fn eval(&mut self, e: &Expr) -> Result<Vec<u8>, TermError> {
        match e {
            Expr::Str(s) | Expr::Num(s) => Ok(s.clone()),
            Expr::Var(v) => {
                let res = self.resolve(v)?;
                let r = res.to_ref()?;
                self.node_get(&r, res.global)?.ok_or_else(|| res.undefined())
            }
            Expr::Unary(op, inner) => {
                let v = self.eval(inner)?;
                Ok(match op {
                    UnOp::Neg => from_num(num(&v).neg()),
                    UnOp::Plus => from_num(num(&v)),
                    UnOp::Not => from_bool(!truth(&v)),
                })
            }
            Expr::Chain(first, rest) => {
                let mut acc = self.eval(first)?;
                for (op, operand) in rest {
                    let b = self.eval(operand)?;
                    acc = binary(*op, acc, &b)?;
                }
                Ok(acc)
            }
            Expr::Func(func, args) => self.call(*func, args),
            Expr::Select(pairs) => {
                for (cond, value) in pairs {
                    if truth(&self.eval(cond)?) {
                        return self.eval(value);
                    }
                }
                Err(TermError::new("SELECT", "no condition was true"))
            }
            Expr::Special(s) => Ok(self.special(*s)),
            Expr::Method { class, method, args } => self.method(class, method, args),
        }
    }

    /// Evaluates the subscripts of a reference, left to right.
    pub(crate) fn resolve(&mut self, v: &VarRef) -> Result<Resolved, TermError> {
        let mut subs = Vec::with_capacity(v.subs.len());
        for s in &v.subs {
            subs.push(self.eval(s)?);
        }
        Ok(Resolved { global: v.global, name: v.name.clone(), subs })
    }

    fn ref_arg(&mut self, e: &Expr, func: &str) -> Result<Resolved, TermError> {
        match e {
            Expr::Var(v) => self.resolve(v),
            _ => Err(TermError::function(format!("{func} needs a variable or global reference"))),
        }
    }

    fn opt(&mut self, args: &[Expr], i: usize) -> Result<Option<Vec<u8>>, TermError> {
        args.get(i).map(|a| self.eval(a)).transpose()
    }

    fn direction(&mut self, args: &[Expr], func: &str) -> Result<bool, TermError> {
        match self.opt(args, 1)?.map(|d| int(&d)) {
            None | Some(1) => Ok(false),
            Some(-1) => Ok(true),
            Some(d) => Err(TermError::function(format!("{func} direction must be 1 or -1, not {d}"))),
        }
    }

    /// Splits `x(...,last)` into the parent reference and the last subscript (`None` for `""`).
    fn parent_and_last(&mut self, res: &Resolved, func: &str) -> Result<(GlobalRef, Option<Subscript>), TermError> {
        let mut parent = res.clone();
        let Some(last) = parent.subs.pop() else {
            return Err(TermError::function(format!("{func} needs a subscripted reference")));
        };
        let parent_ref = parent.to_ref()?;
        let last = if last.is_empty() {
            None
        } else {
            Some(Subscript::from_bytes(last, res.subs.len()).expect("non-empty subscript"))
        };
        Ok((parent_ref, last))
    }

    fn call(&mut self, func: Func, args: &[Expr]) -> Result<Vec<u8>, TermError> {
        let v = match func {
            Func::Get => {
                let res = self.ref_arg(&args[0], "$GET")?;
                let r = res.to_ref()?;
                match self.node_get(&r, res.global)? {
                    Some(v) => v,
                    None => self.opt(args, 1)?.unwrap_or_default(),
                }
            }
            Func::Data => {
                let res = self.ref_arg(&args[0], "$DATA")?;
                let r = res.to_ref()?;
                from_int(self.node_data(&r, res.global)? as i64)
            }
            Func::Increment => {
                let res = self.ref_arg(&args[0], "$INCREMENT")?;
                let by = self.opt(args, 1)?.map(|b| num(&b)).unwrap_or(Number::from(1));
                let r = res.to_ref()?;
                from_num(self.node_increment(&r, res.global, by)?)
            }
            Func::Order => {
                let res = self.ref_arg(&args[0], "$ORDER")?;
                let backward = self.direction(args, "$ORDER")?;
                let (parent, last) = self.parent_and_last(&res, "$ORDER")?;
                self.node_order(&parent, res.global, last.as_ref(), backward)?
                    .map(|s| s.as_bytes().to_vec())
                    .unwrap_or_default()
            }
            Func::Query => {
                let res = self.ref_arg(&args[0], "$QUERY")?;
                let backward = self.direction(args, "$QUERY")?;
                let found = if res.subs.last().is_some_and(|s| s.is_empty()) {
                    let (parent, _) = self.parent_and_last(&res, "$QUERY")?;
                    if backward {
                        self.last_node(parent, res.global)?
                    } else {
                        self.node_query(&parent, res.global, false)?
                    }
                } else {
                    let r = res.to_ref()?;
                    self.node_query(&r, res.global, backward)?
                };
                found.map(|r| ref_text(&r, res.global).into_bytes()).unwrap_or_default()
            }
            Func::Length => {
                let s = self.eval(&args[0])?;
                match self.opt(args, 1)? {
                    None => from_int(s.len() as i64),
                    Some(d) => from_int(f::length_pieces(&s, &d)),
                }
            }
            Func::Piece => {
                let s = self.eval(&args[0])?;
                let d = self.eval(&args[1])?;
                let from = self.opt(args, 2)?.map(|v| int(&v)).unwrap_or(1);
                let to = self.opt(args, 3)?.map(|v| int(&v)).unwrap_or(from);
                f::piece(&s, &d, from, to)
            }
            Func::Extract => {
                let s = self.eval(&args[0])?;
                let from = self.opt(args, 1)?.map(|v| int(&v)).unwrap_or(1);
                let to = self.opt(args, 2)?.map(|v| int(&v)).unwrap_or(from);
                f::extract(&s, from, to)
            }
            Func::Find => {
                let s = self.eval(&args[0])?;
                let sub = self.eval(&args[1])?;
                let start = self.opt(args, 2)?.map(|v| int(&v)).unwrap_or(1);
                from_int(f::find(&s, &sub, start))
            }
            Func::Char => {
                let mut codes = Vec::with_capacity(args.len());
                for a in args {
                    codes.push(int(&self.eval(a)?));
                }
                f::char(&codes)
            }
            Func::Ascii => {
                let s = self.eval(&args[0])?;
                let pos = self.opt(args, 1)?.map(|v| int(&v)).unwrap_or(1);
                from_int(f::ascii(&s, pos))
            }
            Func::Justify => {
                let s = self.eval(&args[0])?;
                let width = int(&self.eval(&args[1])?);
                let decimals = self.opt(args, 2)?.map(|v| int(&v));
                f::justify(&s, width, decimals)?
            }
            Func::Reverse => {
                let mut s = self.eval(&args[0])?;
                s.reverse();
                s
            }
            Func::Translate => {
                let s = self.eval(&args[0])?;
                let from = self.eval(&args[1])?;
                let to = self.opt(args, 2)?.unwrap_or_default();
                f::translate(&s, &from, &to)
            }
            Func::ZConvert => {
                let s = self.eval(&args[0])?;
                let mode = self.eval(&args[1])?;
                f::zconvert(&s, &mode)?
            }
            Func::ZDateTime | Func::ZDate => {
                let h = self.eval(&args[0])?;
                let format = self.opt(args, 1)?;
                let text = if func == Func::ZDate {
                    datetime::zdate(&h, format.as_deref())?
                } else {
                    datetime::zdatetime(&h, format.as_deref())?
                };
                text.into_bytes()
            }
            Func::ZUtil => {
                let code = int(&self.eval(&args[0])?);
                if code != 110 {
                    return Err(TermError::function(format!(
                        "$ZU({code}) is not supported; $ZU(110) is the host name"
                    )));
                }
                self.hostname.clone().into_bytes()
            }
        };
        check_len(v)
    }

    /// The last node holding a value under `parent` (reverse `$QUERY` from `x("")`).
    fn last_node(&mut self, parent: GlobalRef, global: bool) -> Result<Option<GlobalRef>, TermError> {
        let Some(first) = self.node_order(&parent, global, None, true)? else {
            return Ok(None);
        };
        let mut node = parent.child(first)?;
        while self.node_data(&node, global)? >= 10 {
            // Another session may have killed the children since $DATA: stop here.
            let Some(last) = self.node_order(&node, global, None, true)? else {
                break;
            };
            node = node.child(last)?;
        }
        Ok(Some(node))
    }

    fn special(&mut self, s: Special) -> Vec<u8> {
        match s {
            Special::Horolog => datetime::horolog(self.clock.as_ref()).into_bytes(),
            Special::ZTimestamp => datetime::ztimestamp(self.clock.as_ref()).into_bytes(),
            Special::ZVersion => super::version().into_bytes(),
            Special::TLevel => from_int(self.tlevel as i64),
            Special::Namespace => self.namespace.clone().into_bytes(),
            Special::Test => from_bool(self.test),
            Special::X => from_int(self.column as i64),
            Special::Y => from_int(self.row as i64),
        }
    }

    fn method(&mut self, class: &str, method: &str, args: &[Expr]) -> Result<Vec<u8>, TermError> {
        let known = |c: &str| class.eq_ignore_ascii_case(c);
        if known("%SYSTEM.INetInfo") {
            if method.eq_ignore_ascii_case("LocalHostName") && args.is_empty() {
                return Ok(self.hostname.clone().into_bytes());
            }
        } else if known("%SYSTEM.Version") {
            if method.eq_ignore_ascii_case("GetVersion") && args.is_empty() {
                return Ok(super::version().into_bytes());
            }
        } else {
            return Err(TermError::new("CLASS DOES NOT EXIST", format!("*{class}")));
        }
        Err(TermError::new("METHOD DOES NOT EXIST", format!("*{method},{class}")))
    }
}
