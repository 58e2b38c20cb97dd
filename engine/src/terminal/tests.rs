//! Whole-line and whole-session tests against [`MemoryBackend`] with a fixed clock.

use super::*;

fn term() -> Terminal<MemoryBackend> {
    let mut backend = MemoryBackend::new();
    backend.set_read_only("ro").add_namespace("SAMPLES");
    Terminal::new(backend).with_clock(Box::new(FixedClock::at(2026, 11, 22, 10, 0, 0))).with_hostname("host")
}

/// Runs one line and returns what it printed.
fn line(t: &mut Terminal<MemoryBackend>, text: &str) -> String {
    let mut out = Vec::new();
    t.execute_line(text, &mut out);
    String::from_utf8(out).unwrap()
}

fn w(t: &mut Terminal<MemoryBackend>, expr: &str) -> String {
    t.column = 0;
    line(t, &format!("w {expr}"))
}

#[test]
fn operators_are_left_to_right() {
    let mut t = term();
    assert_eq!(w(&mut t, "1+2*3"), "9");
    assert_eq!(w(&mut t, "1+(2*3)"), "7");
    assert_eq!(w(&mut t, "2**3-1"), "7");
    assert_eq!(w(&mut t, "-1+2"), "1");
    assert_eq!(w(&mut t, "7\\2_\"x\""), "3x");
    assert_eq!(w(&mut t, "-7#3"), "2");
    assert_eq!(w(&mut t, "1/3"), ".333333333333333333");
    assert_eq!(w(&mut t, ".1+.2=.3"), "1");
    assert_eq!(w(&mut t, "\"10.0\"=10,\"10\"=10.0"), "01");
    assert_eq!(w(&mut t, "\"12abc\"+1"), "13");
    assert_eq!(w(&mut t, "2>1&(3<2)"), "0");
    assert_eq!(w(&mut t, "1'=2,\"abc\"[\"b\",\"b\"]\"a\",10]]9,\"a\"]]10,'0,3<=3,2>=3"), "11111110");
    assert_eq!(w(&mut t, "1 + 2 * 3"), "9");
    assert_eq!(w(&mut t, "007_\"|\"_-\"-.50\"_\"|\"_1E3"), "7|.5|1000");
}

#[test]
fn string_functions() {
    let mut t = term();
    line(&mut t, "s s=\"a,b,c\"");
    assert_eq!(w(&mut t, "$p(s,\",\",2),$PIECE(s,\",\",2,3),$l(s),$l(s,\",\")"), "bb,c53");
    assert_eq!(w(&mut t, "$e(s),$e(s,3,5),$f(s,\"b\"),$c(72,105),$a(\"A\"),$re(\"abc\")"), "ab,c4Hi65cba");
    assert_eq!(
        w(&mut t, "$j(3.14159,8,2),\"|\",$j(\"x\",3),$tr(\"hello\",\"l\",\"L\"),$zcvt(\"ab\",\"U\")"),
        "    3.14|  xheLLoAB"
    );
    assert_eq!(w(&mut t, "$s(0:\"no\",1:\"yes\"),$s(\"\":1,2>1:2)"), "yes2");
    line(&mut t, "s $p(s,\",\",2)=\"X\",$e(s)=\"Z\"");
    assert_eq!(w(&mut t, "s"), "Z,X,c");
}

#[test]
fn locals_globals_and_order_loops() {
    let mut t = term();
    line(&mut t, "s x(1)=\"a\",x(2)=\"b\",x(\"k\")=\"c\",(y,z)=5");
    assert_eq!(w(&mut t, "x(2),y,z,$d(x),$d(x(1)),$d(q)"), "b551010");
    assert_eq!(line(&mut t, "s k=\"\" f  s k=$o(x(k)) q:k=\"\"  w k,\" \""), "1 2 k ");
    t.column = 0;
    assert_eq!(line(&mut t, "s k=\"\" f  s k=$o(x(k),-1) q:k=\"\"  w k,\" \""), "k 2 1 ");
    line(&mut t, "f i=1:1:5 s ^g(i)=i*i,^g(i,\"s\")=\"sq\"");
    assert_eq!(
        w(&mut t, "$o(^g(\"\")),$o(^g(5)),\"|\",$o(^g(\"\"),-1),$q(^g(\"\")),\" \",$q(^g(1)),\" \",$q(^g(\"\"),-1)"),
        "1|5^g(1) ^g(1,\"s\") ^g(5,\"s\")"
    );
    assert_eq!(w(&mut t, "$g(^g(2)),$g(^g(9),\"none\"),$d(^g),$d(^g(1))"), "4none1011");
    assert_eq!(w(&mut t, "$i(^c),$i(^c),$i(^c,10),$i(n),$increment(n,.5)"), "121211.5");
    line(&mut t, "k ^g(2) zk ^g(3) k x(1)");
    assert_eq!(w(&mut t, "$d(^g(2)),$d(^g(3)),$d(^g(3,\"s\")),$d(x(1))"), "01010");
    line(&mut t, "k");
    assert_eq!(w(&mut t, "$d(x),$d(y)"), "00");
}

#[test]
fn for_if_else_quit_and_postconditionals() {
    let mut t = term();
    assert_eq!(line(&mut t, "f i=1:1:3 f j=1:1:2 w i*j,\" \""), "1 2 2 4 3 6 ");
    t.column = 0;
    assert_eq!(line(&mut t, "f i=10:-3:1 w i,\",\""), "10,7,4,1,");
    t.column = 0;
    assert_eq!(line(&mut t, "f i=\"a\",\"b\",3:1:4 w i"), "ab34");
    t.column = 0;
    assert_eq!(line(&mut t, "f i=1:1 q:i>3  w i"), "123");
    t.column = 0;
    assert_eq!(line(&mut t, "f i=1:1:6 i i#2 w i"), "135");
    t.column = 0;
    assert_eq!(line(&mut t, "s x=5 w:x>1 \"big\" w:x<1 \"small\""), "big");
    t.column = 0;
    assert_eq!(line(&mut t, "i x>9 w \"a\""), "");
    assert_eq!(line(&mut t, "e  w \"else\""), "else");
    t.column = 0;
    assert_eq!(line(&mut t, "if x=5 w \"five\" else  w \"no\""), "five");
    t.column = 0;
    assert_eq!(line(&mut t, "w $t s:x>1 y=2 w y"), "12");
}

#[test]
fn errors_print_and_the_session_goes_on() {
    let mut t = term();
    assert_eq!(line(&mut t, "w nope"), "<UNDEFINED> *nope\n");
    assert_eq!(line(&mut t, "w x(1,\"a\")"), "<UNDEFINED> *x(1,\"a\")\n");
    assert_eq!(line(&mut t, "w ^nope(2)"), "<UNDEFINED> ^nope(2)\n");
    assert_eq!(line(&mut t, "w 1/0"), "<DIVIDE>\n");
    assert_eq!(line(&mut t, "w 5#0"), "<DIVIDE>\n");
    // Regression: 1e500 saturated to the same number as 1e300 (and the same subscript).
    assert_eq!(line(&mut t, "s ^n(1e500)=1"), "<MAXNUMBER> \"1e500\"\n");
    assert_eq!(w(&mut t, "$d(^n)"), "0");
    t.column = 0;
    // Arithmetic beyond the range is <MAXNUMBER> too; it used to saturate to 1e300.
    assert!(line(&mut t, "w 1e300*10").starts_with("<MAXNUMBER>"));
    assert!(line(&mut t, "w -9e300*100").starts_with("<MAXNUMBER>"));
    assert!(line(&mut t, "s x=1e300*10").starts_with("<MAXNUMBER>"));
    assert!(line(&mut t, "w 1e300/.001").starts_with("<MAXNUMBER>"));
    assert!(line(&mut t, "w 10**301").starts_with("<MAXNUMBER>"));
    assert!(line(&mut t, "s ^c=\"1e400\" w $i(^c,1)").starts_with("<MAXNUMBER>"));
    t.column = 0;
    assert!(line(&mut t, "s x=").starts_with("<SYNTAX> "));
    assert!(line(&mut t, "frob").starts_with("<SYNTAX> unknown command frob"));
    assert_eq!(line(&mut t, "s ^ro(1)=1"), "<PROTECT> ^ro(1),/mem/readonly/\n");
    assert_eq!(line(&mut t, "s ^ok=1 s ^ro=2 s ^after=3"), "<PROTECT> ^ro,/mem/readonly/\n");
    assert_eq!(w(&mut t, "$d(^ok),$d(^after)"), "10");
    t.column = 0;
    assert_eq!(line(&mut t, "s x(\"\")=1"), "<SUBSCRIPT> x(\"\")\n");
    assert_eq!(line(&mut t, "zn \"NOPE\""), "<NAMESPACE> *NOPE\n");
    assert_eq!(line(&mut t, "tc"), "<COMMAND> TCOMMIT with no transaction open\n");
    assert_eq!(line(&mut t, "w $s(0:1)"), "<SELECT> no condition was true\n");
    assert_eq!(line(&mut t, "w $zu(5)"), "<FUNCTION> $ZU(5) is not supported; $ZU(110) is the host name\n");
    assert_eq!(line(&mut t, "w $SYSTEM.Foo.Bar()"), "<CLASS DOES NOT EXIST> *%SYSTEM.Foo\n");
    assert_eq!(line(&mut t, "w \"ok\""), "ok");
    assert_eq!(line(&mut t, "w 1 h"), "1", "output before HALT");
    assert_eq!(t.execute_line("h", &mut Vec::new()), Flow::Halt);
    assert_eq!(t.execute_line("w 1 ", &mut Vec::new()), Flow::Continue);
}

#[test]
fn special_variables_and_host_name() {
    let mut t = term();
    assert_eq!(w(&mut t, "$h"), "67896,36000");
    assert_eq!(w(&mut t, "$zdt($h)"), "11/22/2026 10:00:00");
    assert_eq!(w(&mut t, "$zdt($h,3),\" \",$zd($h,8)"), "2026-11-22 10:00:00 20261122");
    assert_eq!(w(&mut t, "$zts"), "67896,36000");
    assert_eq!(
        w(&mut t, "$zu(110),$SYSTEM.INetInfo.LocalHostName(),##class(%SYSTEM.INetInfo).LocalHostName()"),
        "hosthosthost"
    );
    assert_eq!(w(&mut t, "$zv"), format!("Mirrorlab Engine {} (Rust)", env!("CARGO_PKG_VERSION")));
    assert_eq!(w(&mut t, "$namespace,$tlevel"), "USER0");
    line(&mut t, "zn \"samples\"");
    assert_eq!(t.prompt(), "SAMPLES>");
    assert_eq!(w(&mut t, "\"ab\",$x,?6,$x"), "ab2   6");
}

#[test]
fn transactions_roll_back() {
    let mut t = term();
    line(&mut t, "s ^a=1 ts s ^a=2 ts s ^b=1");
    assert_eq!(w(&mut t, "$tl,^a"), "22");
    t.column = 0;
    line(&mut t, "tro");
    assert_eq!(w(&mut t, "$tl,^a,$d(^b)"), "010");
    t.column = 0;
    line(&mut t, "ts s ^a=3 tc");
    assert_eq!(w(&mut t, "$tl,^a"), "03");
}

#[test]
fn zwrite_formats_values_and_lists_locals() {
    let mut t = term();
    line(&mut t, "s ^z=\"top\",^z(1)=1,^z(1,\"a\")=\"x\"\"y\",^z(\"k\")=$c(1)_\"b\",^z(2)=\"01\",^zz(1)=9");
    assert_eq!(
        line(&mut t, "zw ^z"),
        "^z=\"top\"\n^z(1)=1\n^z(1,\"a\")=\"x\"\"y\"\n^z(2)=\"01\"\n^z(\"k\")=$c(1)_\"b\"\n"
    );
    assert_eq!(line(&mut t, "zw ^z(1)"), "^z(1)=1\n^z(1,\"a\")=\"x\"\"y\"\n");
    assert_eq!(line(&mut t, "zw ^none"), "");
    line(&mut t, "s b=2,a(1)=\"x\",a=-.5");
    assert_eq!(line(&mut t, "zw"), "a=-.5\na(1)=\"x\"\nb=2\n");
    assert_eq!(line(&mut t, "w"), "a=-.5\na(1)=\"x\"\nb=2\n");
    assert_eq!(line(&mut t, "zw a"), "a=-.5\na(1)=\"x\"\n");
}

#[test]
fn limits_are_enforced() {
    let mut t = term();
    let long = format!("w \"{}\"", "x".repeat(limits::MAX_LINE_BYTES));
    assert!(line(&mut t, &long).starts_with("<SYNTAX> line is longer"));
    let deep = format!("w {}1{}", "-".repeat(100), "");
    assert!(line(&mut t, &deep).contains("nested deeper"));
    let many = format!("w 0{}", "+1".repeat(10_000));
    assert_eq!(line(&mut t, &many), "10000");
}

/// The seed example from the reference, then `$i`, `zw` and a `<PROTECT>`, piped through
/// `run` exactly as `iris session` reads a script.
#[test]
fn piped_transcript() {
    let script = "\
set ^k8stest($i(^k8stest))=$zdt($h)_\" running on \"_$SYSTEM.INetInfo.LocalHostName()
zw ^k8stest
w $i(^k8stest)
s ^ro(1)=\"x\" ; the database is read-only
w \"still here\",!
f i=1:1:3 s x(i)=i*i
zw x
zn \"SAMPLES\"
w $namespace
h
w \"never\"
";
    let expected = "\
USER>
USER>^k8stest=1
^k8stest(1)=\"11/22/2026 10:00:00 running on host\"
USER>2
USER>
<PROTECT> ^ro(1),/mem/readonly/
USER>still here
USER>
USER>x(1)=1
x(2)=4
x(3)=9
USER>
SAMPLES>SAMPLES
SAMPLES>
";
    let mut t = term();
    let mut out = Vec::new();
    t.run(script.as_bytes(), &mut out, false);
    assert_eq!(String::from_utf8(out).unwrap(), expected);
}

#[test]
fn interactive_session_starts_output_on_a_new_line() {
    let mut t = term();
    let mut out = Vec::new();
    t.run("w 1+1\ns y=1\nw nope\n".as_bytes(), &mut out, true);
    assert_eq!(String::from_utf8(out).unwrap(), "USER>2\nUSER>USER><UNDEFINED> *nope\nUSER>\n");
}

mod no_line_panics {
    use super::*;
    use proptest::prelude::*;

    // No `f` in the alphabet: `f  w 1` is an endless loop by design.
    const ALPHABET: &str = "swkzqhie^$()=,:+-*/\\#_'<>[]!&?\" .1209xyEPOJDGITRCAL%";

    proptest! {
        #![proptest_config(crate::fuzz::config(2000, 0x5445524d))]
        #[test]
        fn any_line_runs_or_reports_an_error(chars in prop::collection::vec(prop::sample::select(ALPHABET.chars().collect::<Vec<_>>()), 0..40)) {
            let line: String = chars.into_iter().collect();
            let mut t = term();
            let mut out = Vec::new();
            t.execute_line("s x=1,y(1)=2,^g(1)=3", &mut out);
            t.execute_line(&line, &mut out);
        }
    }
}
