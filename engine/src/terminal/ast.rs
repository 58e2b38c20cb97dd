//! The parsed form of one terminal line: a list of commands, each with an optional
//! postconditional. Binary operators are kept as a flat chain because ObjectScript
//! evaluates them strictly left to right, with no precedence.

#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Str(Vec<u8>),
    /// A numeric literal, already in canonical form.
    Num(Vec<u8>),
    Var(VarRef),
    Unary(UnOp, Box<Expr>),
    /// `first op1 e1 op2 e2 ...`, evaluated left to right.
    Chain(Box<Expr>, Vec<(BinOp, Expr)>),
    Func(Func, Vec<Expr>),
    /// `$SELECT(cond:value, ...)`.
    Select(Vec<(Expr, Expr)>),
    Special(Special),
    /// `$SYSTEM.Class.Method(args)` or `##class(%SYSTEM.Class).Method(args)`.
    Method {
        class: String,
        method: String,
        args: Vec<Expr>,
    },
}

/// A local (`x`, `x(1,"a")`) or global (`^x(1)`) reference with unevaluated subscripts.
#[derive(Clone, Debug, PartialEq)]
pub struct VarRef {
    pub global: bool,
    pub name: String,
    pub subs: Vec<Expr>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    Plus,
    Not,
}

/// A binary operator; `negated` is the `'` prefix (`'=`, `'<`, `'[`, `'&` ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BinOp {
    pub kind: BinKind,
    pub negated: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinKind {
    Add,
    Sub,
    Mul,
    Div,
    IntDiv,
    Mod,
    Pow,
    Concat,
    Eq,
    Lt,
    Gt,
    Le,
    Ge,
    Contains,
    Follows,
    SortsAfter,
    And,
    Or,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    Increment,
    Get,
    Data,
    Order,
    Query,
    Length,
    Piece,
    Extract,
    Find,
    Char,
    Ascii,
    Justify,
    Reverse,
    Translate,
    ZConvert,
    ZDateTime,
    ZDate,
    ZUtil,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Special {
    Horolog,
    ZTimestamp,
    ZVersion,
    TLevel,
    Namespace,
    Test,
    X,
    Y,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    pub kind: Cmd,
    pub post: Option<Expr>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Cmd {
    Set(Vec<SetArg>),
    /// `None`: argumentless WRITE, which lists the local variables.
    Write(Option<Vec<WriteArg>>),
    ZWrite(Option<Vec<VarRef>>),
    Kill(Option<Vec<VarRef>>),
    ZKill(Vec<VarRef>),
    ZNspace(Expr),
    TStart,
    TCommit,
    TRollback,
    Halt,
    If(Option<Vec<Expr>>),
    Else,
    For(Option<(VarRef, Vec<ForParam>)>),
    Quit,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SetArg {
    pub targets: Vec<SetTarget>,
    pub value: Expr,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SetTarget {
    Var(VarRef),
    /// `set $piece(var,delim[,from[,to]])=value`
    Piece {
        var: VarRef,
        delim: Expr,
        from: Option<Expr>,
        to: Option<Expr>,
    },
    /// `set $extract(var[,from[,to]])=value`
    Extract {
        var: VarRef,
        from: Option<Expr>,
        to: Option<Expr>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum WriteArg {
    /// `!`
    NewLine,
    /// `#`
    Clear,
    /// `?n`
    Column(Expr),
    Expr(Expr),
}

/// `start[:step[:end]]`.
#[derive(Clone, Debug, PartialEq)]
pub struct ForParam {
    pub start: Expr,
    pub step: Option<Expr>,
    pub end: Option<Expr>,
}
