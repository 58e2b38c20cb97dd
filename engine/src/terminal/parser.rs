//! Parses the tokens of one line into commands. Names of commands, functions and special
//! variables are case-insensitive and accept their standard abbreviations.

use super::ast::*;
use super::error::TermError;
use super::lexer::{tokenize, Tok, Token};
use super::limits::MAX_NESTING;
use crate::globals::Number;

/// Parses a whole line.
pub fn parse_line(line: &str) -> Result<Vec<Command>, TermError> {
    let tokens = tokenize(line)?;
    let mut p = Parser { tokens, i: 0, depth: 0 };
    p.line()
}

struct Parser {
    tokens: Vec<Token>,
    i: usize,
    depth: usize,
}

/// How a command takes arguments.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Args {
    Required,
    Optional,
    None,
}

fn command_word(word: &str) -> Option<(&'static str, Args)> {
    let w = word.to_ascii_uppercase();
    let found = match w.as_str() {
        "S" | "SET" => ("SET", Args::Required),
        "W" | "WRITE" => ("WRITE", Args::Optional),
        "ZW" | "ZWRITE" => ("ZWRITE", Args::Optional),
        "K" | "KILL" => ("KILL", Args::Optional),
        "ZK" | "ZKILL" => ("ZKILL", Args::Required),
        "ZN" | "ZNSPACE" => ("ZNSPACE", Args::Required),
        "TS" | "TSTART" => ("TSTART", Args::None),
        "TC" | "TCOMMIT" => ("TCOMMIT", Args::None),
        "TRO" | "TROLLBACK" => ("TROLLBACK", Args::None),
        "H" | "HALT" => ("HALT", Args::None),
        "I" | "IF" => ("IF", Args::Optional),
        "E" | "ELSE" => ("ELSE", Args::None),
        "F" | "FOR" => ("FOR", Args::Optional),
        "Q" | "QUIT" => ("QUIT", Args::None),
        _ => return None,
    };
    Some(found)
}

/// Function names and abbreviations, with their argument counts.
fn function_name(name: &str) -> Option<(Func, usize, usize)> {
    let n = name.to_ascii_uppercase();
    let found = match n.as_str() {
        "I" | "INCREMENT" => (Func::Increment, 1, 2),
        "G" | "GET" => (Func::Get, 1, 2),
        "D" | "DATA" => (Func::Data, 1, 1),
        "O" | "ORDER" => (Func::Order, 1, 2),
        "Q" | "QUERY" => (Func::Query, 1, 2),
        "L" | "LENGTH" => (Func::Length, 1, 2),
        "P" | "PIECE" => (Func::Piece, 2, 4),
        "E" | "EXTRACT" => (Func::Extract, 1, 3),
        "F" | "FIND" => (Func::Find, 2, 3),
        "C" | "CHAR" => (Func::Char, 1, 64),
        "A" | "ASCII" => (Func::Ascii, 1, 2),
        "J" | "JUSTIFY" => (Func::Justify, 2, 3),
        "RE" | "REVERSE" => (Func::Reverse, 1, 1),
        "TR" | "TRANSLATE" => (Func::Translate, 2, 3),
        "ZCVT" | "ZCONVERT" => (Func::ZConvert, 2, 2),
        "ZDT" | "ZDATETIME" => (Func::ZDateTime, 1, 2),
        "ZD" | "ZDATE" => (Func::ZDate, 1, 2),
        "ZU" | "ZUTIL" => (Func::ZUtil, 1, 1),
        _ => return None,
    };
    Some(found)
}

fn special_name(name: &str) -> Option<Special> {
    let n = name.to_ascii_uppercase();
    let found = match n.as_str() {
        "H" | "HOROLOG" => Special::Horolog,
        "ZTS" | "ZTIMESTAMP" => Special::ZTimestamp,
        "ZV" | "ZVERSION" => Special::ZVersion,
        "TL" | "TLEVEL" => Special::TLevel,
        "NAMESPACE" | "ZNSPACE" => Special::Namespace,
        "T" | "TEST" => Special::Test,
        "X" => Special::X,
        "Y" => Special::Y,
        _ => return None,
    };
    Some(found)
}

fn binary_op(op: &str) -> Option<BinKind> {
    Some(match op {
        "+" => BinKind::Add,
        "-" => BinKind::Sub,
        "*" => BinKind::Mul,
        "/" => BinKind::Div,
        "\\" => BinKind::IntDiv,
        "#" => BinKind::Mod,
        "**" => BinKind::Pow,
        "_" => BinKind::Concat,
        "=" => BinKind::Eq,
        "<" => BinKind::Lt,
        ">" => BinKind::Gt,
        "<=" => BinKind::Le,
        ">=" => BinKind::Ge,
        "[" => BinKind::Contains,
        "]" => BinKind::Follows,
        "]]" => BinKind::SortsAfter,
        "&" => BinKind::And,
        "!" => BinKind::Or,
        _ => return None,
    })
}

/// Operators that accept the `'` (not) prefix.
fn negatable(kind: BinKind) -> bool {
    matches!(
        kind,
        BinKind::Eq
            | BinKind::Lt
            | BinKind::Gt
            | BinKind::Contains
            | BinKind::Follows
            | BinKind::SortsAfter
            | BinKind::And
            | BinKind::Or
    )
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.tokens[self.i]
    }

    fn peek_at(&self, n: usize) -> &Token {
        &self.tokens[(self.i + n).min(self.tokens.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.tokens[self.i].clone();
        if self.i + 1 < self.tokens.len() {
            self.i += 1;
        }
        t
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(&self.peek().tok, Tok::Op(o) if *o == op)
    }

    /// `op` right here, with no space before it.
    fn is_tight_op(&self, op: &str) -> bool {
        self.is_op(op) && self.peek().spaces == 0
    }

    fn expect_op(&mut self, op: &str) -> Result<(), TermError> {
        if self.is_op(op) {
            self.next();
            Ok(())
        } else {
            Err(self.unexpected(&format!("expected {op}")))
        }
    }

    fn unexpected(&self, what: &str) -> TermError {
        let t = self.peek();
        let found = match &t.tok {
            Tok::End => "end of line".to_string(),
            Tok::Name(n) => n.clone(),
            Tok::Global(n) => format!("^{n}"),
            Tok::Dollar(n) => format!("${n}"),
            Tok::Class => "##class".into(),
            Tok::Str(_) => "a string".into(),
            Tok::Num(n) => n.clone(),
            Tok::Op(o) => (*o).to_string(),
        };
        TermError::syntax(t.pos, format!("{what}, found {found}"))
    }

    fn line(&mut self) -> Result<Vec<Command>, TermError> {
        let mut cmds = Vec::new();
        let mut fors = 0;
        loop {
            let t = self.peek().clone();
            if t.tok == Tok::End {
                return Ok(cmds);
            }
            if !cmds.is_empty() && t.spaces == 0 {
                return Err(self.unexpected("expected a space before the next command"));
            }
            let Tok::Name(word) = &t.tok else {
                return Err(self.unexpected("expected a command"));
            };
            let Some((name, args)) = command_word(word) else {
                return Err(TermError::syntax(t.pos, format!("unknown command {word}")));
            };
            self.next();
            let post = if self.is_tight_op(":") {
                self.next();
                Some(self.expr()?)
            } else {
                None
            };
            let next = self.peek();
            let has_args = match args {
                Args::None => false,
                Args::Optional => next.tok != Tok::End && next.spaces == 1,
                Args::Required => {
                    if next.tok == Tok::End || next.spaces == 0 {
                        return Err(self.unexpected(&format!("{name} needs an argument")));
                    }
                    true
                }
            };
            if !has_args && args == Args::None && next.tok != Tok::End && next.spaces == 0 {
                return Err(self.unexpected(&format!("{name} takes no argument")));
            }
            if name == "FOR" {
                fors += 1;
                if fors > MAX_NESTING {
                    return Err(TermError::syntax(t.pos, format!("more than {MAX_NESTING} FOR commands on one line")));
                }
            }
            let kind = self.command(name, has_args)?;
            cmds.push(Command { kind, post });
        }
    }

    fn list<T>(&mut self, mut item: impl FnMut(&mut Self) -> Result<T, TermError>) -> Result<Vec<T>, TermError> {
        let mut v = vec![item(self)?];
        while self.is_op(",") {
            self.next();
            v.push(item(self)?);
        }
        Ok(v)
    }

    fn command(&mut self, name: &str, has_args: bool) -> Result<Cmd, TermError> {
        Ok(match (name, has_args) {
            ("SET", _) => Cmd::Set(self.list(Self::set_arg)?),
            ("WRITE", false) => Cmd::Write(None),
            ("WRITE", true) => Cmd::Write(Some(self.list(Self::write_arg)?.into_iter().flatten().collect())),
            ("ZWRITE", false) => Cmd::ZWrite(None),
            ("ZWRITE", true) => Cmd::ZWrite(Some(self.list(Self::var_ref)?)),
            ("KILL", false) => Cmd::Kill(None),
            ("KILL", true) => Cmd::Kill(Some(self.list(Self::var_ref)?)),
            ("ZKILL", _) => Cmd::ZKill(self.list(Self::var_ref)?),
            ("ZNSPACE", _) => Cmd::ZNspace(self.expr()?),
            ("TSTART", _) => Cmd::TStart,
            ("TCOMMIT", _) => Cmd::TCommit,
            ("TROLLBACK", _) => Cmd::TRollback,
            ("HALT", _) => Cmd::Halt,
            ("IF", false) => Cmd::If(None),
            ("IF", true) => Cmd::If(Some(self.list(Self::expr)?)),
            ("ELSE", _) => Cmd::Else,
            ("FOR", false) => Cmd::For(None),
            ("FOR", true) => {
                let var = self.var_ref()?;
                self.expect_op("=")?;
                Cmd::For(Some((var, self.list(Self::for_param)?)))
            }
            ("QUIT", _) => Cmd::Quit,
            _ => unreachable!("command_word returned {name}"),
        })
    }

    fn set_arg(&mut self) -> Result<SetArg, TermError> {
        let targets = if self.is_op("(") {
            self.next();
            let t = self.list(Self::set_target)?;
            self.expect_op(")")?;
            t
        } else {
            vec![self.set_target()?]
        };
        self.expect_op("=")?;
        Ok(SetArg { targets, value: self.expr()? })
    }

    fn set_target(&mut self) -> Result<SetTarget, TermError> {
        if let Tok::Dollar(name) = &self.peek().tok {
            let func = function_name(name).map(|f| f.0);
            if !matches!(func, Some(Func::Piece | Func::Extract)) {
                return Err(self.unexpected("only $PIECE and $EXTRACT can be SET"));
            }
            self.next();
            self.expect_op("(")?;
            let var = self.var_ref()?;
            let mut args = Vec::new();
            while self.is_op(",") {
                self.next();
                args.push(self.expr()?);
            }
            self.expect_op(")")?;
            let mut args = args.into_iter();
            return Ok(if func == Some(Func::Piece) {
                let Some(delim) = args.next() else {
                    return Err(self.unexpected("SET $PIECE needs a delimiter"));
                };
                let (from, to) = (args.next(), args.next());
                if args.next().is_some() {
                    return Err(self.unexpected("too many arguments to $PIECE"));
                }
                SetTarget::Piece { var, delim, from, to }
            } else {
                let (from, to) = (args.next(), args.next());
                if args.next().is_some() {
                    return Err(self.unexpected("too many arguments to $EXTRACT"));
                }
                SetTarget::Extract { var, from, to }
            });
        }
        Ok(SetTarget::Var(self.var_ref()?))
    }

    /// One WRITE argument: a run of format controls (`!`, `#`, `?n`) or an expression.
    fn write_arg(&mut self) -> Result<Vec<WriteArg>, TermError> {
        let mut items = Vec::new();
        loop {
            if self.is_op("!") && (items.is_empty() || self.peek().spaces == 0) {
                self.next();
                items.push(WriteArg::NewLine);
            } else if self.is_op("#") && (items.is_empty() || self.peek().spaces == 0) {
                self.next();
                items.push(WriteArg::Clear);
            } else if self.is_op("?") && (items.is_empty() || self.peek().spaces == 0) {
                self.next();
                items.push(WriteArg::Column(self.operand()?));
            } else {
                break;
            }
        }
        if items.is_empty() {
            items.push(WriteArg::Expr(self.expr()?));
        }
        Ok(items)
    }

    fn for_param(&mut self) -> Result<ForParam, TermError> {
        let start = self.expr()?;
        let mut step = None;
        let mut end = None;
        if self.is_tight_op(":") {
            self.next();
            step = Some(self.expr()?);
            if self.is_tight_op(":") {
                self.next();
                end = Some(self.expr()?);
            }
        }
        Ok(ForParam { start, step, end })
    }

    fn var_ref(&mut self) -> Result<VarRef, TermError> {
        let t = self.peek().clone();
        let (global, name) = match t.tok {
            Tok::Name(n) => (false, n),
            Tok::Global(n) => (true, n),
            _ => return Err(self.unexpected("expected a variable or global reference")),
        };
        self.next();
        let subs = self.subscripts()?;
        Ok(VarRef { global, name, subs })
    }

    fn subscripts(&mut self) -> Result<Vec<Expr>, TermError> {
        if !self.is_tight_op("(") {
            return Ok(Vec::new());
        }
        self.next();
        let subs = self.list(Self::expr)?;
        self.expect_op(")")?;
        Ok(subs)
    }

    fn enter(&mut self) -> Result<(), TermError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(TermError::syntax(self.peek().pos, format!("expression nested deeper than {MAX_NESTING}")));
        }
        Ok(())
    }

    pub fn expr(&mut self) -> Result<Expr, TermError> {
        self.enter()?;
        let first = self.operand()?;
        let mut rest = Vec::new();
        loop {
            let negated = self.is_op("'")
                && matches!(&self.peek_at(1).tok, Tok::Op(o) if binary_op(o).is_some_and(negatable))
                && self.peek_at(1).spaces == 0;
            let at = if negated { 1 } else { 0 };
            let Tok::Op(op) = &self.peek_at(at).tok else {
                break;
            };
            let Some(kind) = binary_op(op) else { break };
            if negated {
                self.next();
            }
            self.next();
            let rhs = self.operand()?;
            rest.push((BinOp { kind, negated }, rhs));
        }
        self.depth -= 1;
        Ok(if rest.is_empty() { first } else { Expr::Chain(Box::new(first), rest) })
    }

    fn operand(&mut self) -> Result<Expr, TermError> {
        self.enter()?;
        let t = self.peek().clone();
        let e = match t.tok {
            Tok::Op("-") | Tok::Op("+") | Tok::Op("'") => {
                self.next();
                let op = match t.tok {
                    Tok::Op("-") => UnOp::Neg,
                    Tok::Op("+") => UnOp::Plus,
                    _ => UnOp::Not,
                };
                Expr::Unary(op, Box::new(self.operand()?))
            }
            Tok::Op("(") => {
                self.next();
                let e = self.expr()?;
                self.expect_op(")")?;
                e
            }
            Tok::Str(s) => {
                self.next();
                Expr::Str(s)
            }
            Tok::Num(n) => {
                self.next();
                // A literal beyond the engine's range is an error, not a saturated number
                // (^n(1e300) and ^n(1e500) must not be one node).
                let Some(number) = Number::parse_in_range(n.as_bytes()) else {
                    return Err(TermError::new("MAXNUMBER", crate::globals::error::excerpt(&n)));
                };
                Expr::Num(number.to_canonical().into_bytes())
            }
            Tok::Name(_) | Tok::Global(_) => Expr::Var(self.var_ref()?),
            Tok::Dollar(name) => {
                self.next();
                self.dollar(&name, t.pos)?
            }
            Tok::Class => {
                self.next();
                self.expect_op("(")?;
                let class = self.dotted_name()?;
                self.expect_op(")")?;
                self.expect_op(".")?;
                self.method(class)?
            }
            _ => return Err(self.unexpected("expected an expression")),
        };
        self.depth -= 1;
        Ok(e)
    }

    /// `%SYSTEM.INetInfo`
    fn dotted_name(&mut self) -> Result<String, TermError> {
        let mut parts = Vec::new();
        loop {
            match &self.peek().tok {
                Tok::Name(n) => parts.push(n.clone()),
                _ => return Err(self.unexpected("expected a class name")),
            }
            self.next();
            if !self.is_tight_op(".") {
                return Ok(parts.join("."));
            }
            self.next();
        }
    }

    /// `Method(args)` after the class and its dot.
    fn method(&mut self, class: String) -> Result<Expr, TermError> {
        let Tok::Name(method) = self.peek().tok.clone() else {
            return Err(self.unexpected("expected a method name"));
        };
        self.next();
        let mut args = Vec::new();
        if self.is_tight_op("(") {
            self.next();
            if !self.is_op(")") {
                args = self.list(Self::expr)?;
            }
            self.expect_op(")")?;
        }
        Ok(Expr::Method { class, method, args })
    }

    fn dollar(&mut self, name: &str, pos: usize) -> Result<Expr, TermError> {
        if name.eq_ignore_ascii_case("SYSTEM") {
            self.expect_op(".")?;
            let Tok::Name(class) = self.peek().tok.clone() else {
                return Err(self.unexpected("expected a class name after $SYSTEM."));
            };
            self.next();
            self.expect_op(".")?;
            return self.method(format!("%SYSTEM.{class}"));
        }
        if !self.is_tight_op("(") {
            return match special_name(name) {
                Some(s) => Ok(Expr::Special(s)),
                None => Err(TermError::syntax(pos, format!("unknown special variable ${name}"))),
            };
        }
        self.next();
        if name.eq_ignore_ascii_case("S") || name.eq_ignore_ascii_case("SELECT") {
            let pairs = self.list(|p| {
                let cond = p.expr()?;
                p.expect_op(":")?;
                Ok((cond, p.expr()?))
            })?;
            self.expect_op(")")?;
            return Ok(Expr::Select(pairs));
        }
        let Some((func, min, max)) = function_name(name) else {
            return Err(TermError::syntax(pos, format!("unknown function ${name}")));
        };
        let args = self.list(Self::expr)?;
        self.expect_op(")")?;
        if args.len() < min || args.len() > max {
            return Err(TermError::syntax(pos, format!("${name} takes {min} to {max} arguments, not {}", args.len())));
        }
        Ok(Expr::Func(func, args))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(s: &str) -> Expr {
        Expr::Num(s.as_bytes().to_vec())
    }

    #[test]
    fn operators_form_a_flat_chain() {
        let cmds = parse_line("w 1+2*3").unwrap();
        let Cmd::Write(Some(args)) = &cmds[0].kind else { panic!() };
        let add = BinOp { kind: BinKind::Add, negated: false };
        let mul = BinOp { kind: BinKind::Mul, negated: false };
        assert_eq!(args[0], WriteArg::Expr(Expr::Chain(Box::new(num("1")), vec![(add, num("2")), (mul, num("3"))])));
    }

    #[test]
    fn commands_postconditions_and_abbreviations() {
        let cmds = parse_line("S:x>1 y=2  KILL  w !,\"a\",?5,y q").unwrap();
        assert_eq!(cmds.len(), 4);
        assert!(cmds[0].post.is_some());
        assert!(matches!(cmds[1].kind, Cmd::Kill(None)));
        let Cmd::Write(Some(w)) = &cmds[2].kind else { panic!() };
        assert_eq!(w.len(), 4);
        assert!(matches!(cmds[3].kind, Cmd::Quit));
        let cmds = parse_line("f i=1:1:10,20 s ^x(i)=i").unwrap();
        let Cmd::For(Some((_, params))) = &cmds[0].kind else { panic!() };
        assert_eq!(params.len(), 2);
        assert!(params[0].end.is_some() && params[1].step.is_none());
        assert!(parse_line("set (a,b)=1,$p(c,\",\",2)=3").is_ok());
        assert!(parse_line("s x = 1 + 2").is_ok());
        assert!(parse_line("w ##class(%SYSTEM.INetInfo).LocalHostName(),$SYSTEM.INetInfo.LocalHostName()").is_ok());
        assert!(parse_line("w $s(1:2,1:3),'(1'=2)").is_ok());
    }

    #[test]
    fn syntax_errors() {
        for bad in
            ["s", "s x", "s x=", "w 1+", "w (1", "foo", "w $zz(1)", "w $l()", "w 1 2", "s x=1w x", "h 5", "w $s(1)"]
        {
            let e = parse_line(bad).unwrap_err();
            assert_eq!(e.code, "SYNTAX", "{bad}");
        }
        let fors = "f i=1:1:1 ".repeat(MAX_NESTING + 1);
        assert!(parse_line(&fors).unwrap_err().detail.contains("FOR commands"));
        let deep = format!("w {}1{}", "(".repeat(200), ")".repeat(200));
        assert!(parse_line(&deep).unwrap_err().detail.contains("nested"));
    }
}
