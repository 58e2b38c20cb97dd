//! ObjectScript numbers: how a string is read as a number, exact decimal arithmetic, and
//! the canonical form (`.5`, `-3`, `10`) that decides whether a subscript is a number.
//!
//! Values are kept as `mantissa × 10^exponent` in an `i128`, exact up to 36 significant
//! digits. Past that, precision is dropped (rounded), never the magnitude, which is what
//! users of a decimal engine expect from `$INCREMENT` and terminal arithmetic.

use std::cmp::Ordering;

/// Mantissas stay below 10^36 so every single multiply-by-ten is overflow free.
const MAX_MANTISSA: i128 = 10i128.pow(36);
/// Largest decimal exponent kept; beyond it the value saturates (reference: `<MAXNUMBER>`).
const MAX_EXPONENT: i32 = 300;
/// Significant digits kept by division, as the reference product's 18-digit decimals.
const DIVISION_DIGITS: u32 = 18;

#[derive(Clone, Copy, Debug)]
pub struct Number {
    mantissa: i128,
    exponent: i32,
}

impl PartialEq for Number {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Number {}
impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Number {
    fn cmp(&self, other: &Self) -> Ordering {
        let d = self.sub(*other);
        d.mantissa.cmp(&0)
    }
}

impl From<i64> for Number {
    fn from(v: i64) -> Self {
        Number { mantissa: v as i128, exponent: 0 }.normalized()
    }
}

impl Number {
    pub const ZERO: Number = Number { mantissa: 0, exponent: 0 };

    fn normalized(self) -> Self {
        let mut n = self.normalized_unclamped();
        n.exponent = n.exponent.clamp(-MAX_EXPONENT * 2, MAX_EXPONENT);
        n
    }

    /// Trailing zeros moved into the exponent and the mantissa rounded to its width, the
    /// exponent left as it is (it may be out of range).
    fn normalized_unclamped(mut self) -> Self {
        if self.mantissa == 0 {
            self.exponent = 0;
            return self;
        }
        while self.mantissa % 10 == 0 {
            self.mantissa /= 10;
            self.exponent += 1;
        }
        while self.mantissa.abs() >= MAX_MANTISSA {
            self.mantissa = div_round(self.mantissa, 10);
            self.exponent += 1;
        }
        self
    }

    /// Reads the leading numeric part of `s` the way ObjectScript does: any number of
    /// `+`/`-` signs, digits, an optional fraction and an optional `E` exponent. A string with
    /// no numeric prefix (`"abc"`, `""`) is zero.
    pub fn parse_prefix(s: &[u8]) -> Number {
        Number::parse_raw(s).normalized()
    }

    /// [`Number::parse_prefix`] for a number literal that must be exact in magnitude (a
    /// subscript): `None` when it is beyond the engine's range (10^300 times 36 digits),
    /// which the reference product answers with `<MAXNUMBER>`, rather than a saturated
    /// value that would be the same key as every other too-large number.
    pub fn parse_in_range(s: &[u8]) -> Option<Number> {
        let n = Number::parse_raw(s).normalized_unclamped();
        (n.exponent <= MAX_EXPONENT).then(|| n.normalized())
    }

    fn parse_raw(s: &[u8]) -> Number {
        let mut i = 0;
        let mut negative = false;
        while i < s.len() && (s[i] == b'+' || s[i] == b'-') {
            negative ^= s[i] == b'-';
            i += 1;
        }
        let mut mantissa: i128 = 0;
        let mut exponent: i32 = 0;
        let mut any_digit = false;
        let push = |d: u8, fraction: bool, mantissa: &mut i128, exponent: &mut i32| {
            if *mantissa < MAX_MANTISSA / 10 {
                *mantissa = *mantissa * 10 + (d - b'0') as i128;
                if fraction {
                    *exponent -= 1;
                }
            } else if !fraction {
                *exponent += 1; // precision dropped, magnitude kept
            }
        };
        while i < s.len() && s[i].is_ascii_digit() {
            push(s[i], false, &mut mantissa, &mut exponent);
            any_digit = true;
            i += 1;
        }
        if i < s.len() && s[i] == b'.' {
            let mut j = i + 1;
            while j < s.len() && s[j].is_ascii_digit() {
                push(s[j], true, &mut mantissa, &mut exponent);
                any_digit = true;
                j += 1;
            }
            i = j;
        }
        if !any_digit {
            return Number::ZERO;
        }
        if i < s.len() && (s[i] == b'E' || s[i] == b'e') {
            let mut j = i + 1;
            let mut exp_negative = false;
            if j < s.len() && (s[j] == b'+' || s[j] == b'-') {
                exp_negative = s[j] == b'-';
                j += 1;
            }
            let start = j;
            let mut e: i32 = 0;
            while j < s.len() && s[j].is_ascii_digit() {
                e = (e * 10 + (s[j] - b'0') as i32).min(10 * MAX_EXPONENT);
                j += 1;
            }
            if j > start {
                exponent += if exp_negative { -e } else { e };
            }
        }
        if negative {
            mantissa = -mantissa;
        }
        Number { mantissa, exponent }
    }

    /// The canonical text of this number: no leading or trailing zeros, no `+`, `.5` for
    /// one half, `0` for zero.
    pub fn to_canonical(&self) -> String {
        if self.mantissa == 0 {
            return "0".to_string();
        }
        let digits = self.mantissa.unsigned_abs().to_string();
        let mut out = String::with_capacity(digits.len() + 4);
        if self.mantissa < 0 {
            out.push('-');
        }
        if self.exponent >= 0 {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', self.exponent as usize));
        } else {
            let point = digits.len() as i64 + self.exponent as i64;
            if point > 0 {
                out.push_str(&digits[..point as usize]);
                out.push('.');
                out.push_str(&digits[point as usize..]);
            } else {
                out.push('.');
                out.extend(std::iter::repeat_n('0', (-point) as usize));
                out.push_str(&digits);
            }
        }
        out
    }

    pub fn is_zero(&self) -> bool {
        self.mantissa == 0
    }

    pub fn is_integer(&self) -> bool {
        self.exponent >= 0
    }

    /// The value as an `i64` if it is an integer in range.
    pub fn to_i64(&self) -> Option<i64> {
        if !self.is_integer() || self.exponent > 18 {
            return None;
        }
        let v = self.mantissa.checked_mul(10i128.pow(self.exponent as u32))?;
        i64::try_from(v).ok()
    }

    /// Integer part, truncated toward zero.
    pub fn trunc(&self) -> Number {
        if self.is_integer() {
            return *self;
        }
        let shift = (-self.exponent) as u32;
        if shift > 38 {
            return Number::ZERO;
        }
        Number { mantissa: self.mantissa / 10i128.pow(shift), exponent: 0 }.normalized()
    }

    pub fn neg(&self) -> Number {
        Number { mantissa: -self.mantissa, exponent: self.exponent }
    }

    /// Brings both operands to one exponent, dropping digits of the smaller one only if
    /// the larger could not be scaled without overflow.
    fn aligned(a: Number, b: Number) -> (i128, i128, i32) {
        let (mut am, mut ae, mut bm, mut be) = (a.mantissa, a.exponent, b.mantissa, b.exponent);
        if am == 0 {
            return (0, bm, be);
        }
        if bm == 0 {
            return (am, 0, ae);
        }
        while ae > be {
            if am.abs() < MAX_MANTISSA {
                am *= 10;
                ae -= 1;
            } else {
                bm = div_round(bm, 10);
                be += 1;
            }
        }
        while be > ae {
            if bm.abs() < MAX_MANTISSA {
                bm *= 10;
                be -= 1;
            } else {
                am = div_round(am, 10);
                ae += 1;
            }
        }
        (am, bm, ae)
    }

    pub fn add(&self, other: Number) -> Number {
        let (a, b, e) = Number::aligned(*self, other);
        Number { mantissa: a + b, exponent: e }.normalized()
    }

    pub fn sub(&self, other: Number) -> Number {
        self.add(other.neg())
    }

    /// `a + b`, or `None` when the sum is beyond the engine's range (it would saturate):
    /// the reference product's `<MAXNUMBER>`. `$INCREMENT` and terminal arithmetic use it.
    pub fn checked_add(&self, other: Number) -> Option<Number> {
        let (a, b, e) = Number::aligned(*self, other);
        Number { mantissa: a + b, exponent: e }.in_range()
    }

    /// `a - b`, or `None` beyond the engine's range.
    pub fn checked_sub(&self, other: Number) -> Option<Number> {
        self.checked_add(other.neg())
    }

    /// `a * b`, or `None` beyond the engine's range.
    pub fn checked_mul(&self, other: Number) -> Option<Number> {
        let (mut a, mut b) = (*self, other);
        loop {
            if let Some(m) = a.mantissa.checked_mul(b.mantissa) {
                return Number { mantissa: m, exponent: a.exponent + b.exponent }.in_range();
            }
            if a.mantissa.abs() > b.mantissa.abs() {
                a = Number { mantissa: div_round(a.mantissa, 10), exponent: a.exponent + 1 };
            } else {
                b = Number { mantissa: div_round(b.mantissa, 10), exponent: b.exponent + 1 };
            }
        }
    }

    /// Normalized, or `None` when the magnitude is beyond the range ([`Number::normalized`]
    /// would saturate it). The small end keeps saturating toward zero as before.
    fn in_range(self) -> Option<Number> {
        let n = self.normalized_unclamped();
        (n.exponent <= MAX_EXPONENT).then(|| n.normalized())
    }

    pub fn mul(&self, other: Number) -> Number {
        let (mut a, mut b) = (*self, other);
        loop {
            if let Some(m) = a.mantissa.checked_mul(b.mantissa) {
                return Number { mantissa: m, exponent: a.exponent + b.exponent }.normalized();
            }
            if a.mantissa.abs() > b.mantissa.abs() {
                a = Number { mantissa: div_round(a.mantissa, 10), exponent: a.exponent + 1 };
            } else {
                b = Number { mantissa: div_round(b.mantissa, 10), exponent: b.exponent + 1 };
            }
        }
    }

    /// `a / b` to 18 significant digits; `None` when dividing by zero (`<DIVIDE>`).
    pub fn div(&self, other: Number) -> Option<Number> {
        self.quotient(other).map(Number::normalized)
    }

    /// `a / b` for a non-zero `b`, or `None` when the quotient is beyond the engine's range
    /// (`<MAXNUMBER>`, where [`Number::div`] saturates).
    pub fn checked_div(&self, other: Number) -> Option<Number> {
        assert!(!other.is_zero(), "checked_div: the caller refuses a zero divisor (<DIVIDE>)");
        self.quotient(other)?.in_range()
    }

    /// `a / b` before normalizing; `None` when dividing by zero.
    fn quotient(&self, other: Number) -> Option<Number> {
        if other.mantissa == 0 {
            return None;
        }
        let mut numerator = self.mantissa;
        let mut shift = 0i32;
        while numerator != 0 && numerator.abs() < MAX_MANTISSA {
            numerator *= 10;
            shift += 1;
        }
        let q = numerator / other.mantissa;
        let mut result = Number { mantissa: q, exponent: self.exponent - shift - other.exponent };
        let digits = result.mantissa.unsigned_abs().checked_ilog10().unwrap_or(0) + 1;
        if digits > DIVISION_DIGITS {
            let drop = digits - DIVISION_DIGITS;
            result.mantissa = div_round(result.mantissa, 10i128.pow(drop));
            result.exponent += drop as i32;
        }
        Some(result)
    }

    /// Integer division `a \ b`, truncated toward zero.
    pub fn int_div(&self, other: Number) -> Option<Number> {
        let (a, b, _) = Number::aligned(*self, other);
        if b == 0 {
            return None;
        }
        Some(Number { mantissa: a / b, exponent: 0 }.normalized())
    }

    /// Modulo `a # b`, with the sign of the divisor as ObjectScript defines it.
    pub fn modulo(&self, other: Number) -> Option<Number> {
        let (a, b, e) = Number::aligned(*self, other);
        if b == 0 {
            return None;
        }
        let mut r = a % b;
        if r != 0 && (r < 0) != (b < 0) {
            r += b;
        }
        Some(Number { mantissa: r, exponent: e }.normalized())
    }
}

fn div_round(v: i128, d: i128) -> i128 {
    let q = v / d;
    let r = v % d;
    if r.abs() * 2 >= d {
        q + v.signum()
    } else {
        q
    }
}

/// Whether `s` is a canonical number (`0`, `12`, `-3.5`, `.25`), the form in which a
/// subscript collates as a number rather than as a string.
pub fn is_canonical_number(s: &[u8]) -> bool {
    if s == b"0" {
        return true;
    }
    let body = s.strip_prefix(b"-").unwrap_or(s);
    let (int, frac) = match body.iter().position(|&c| c == b'.') {
        Some(p) => (&body[..p], Some(&body[p + 1..])),
        None => (body, None),
    };
    let int_ok = int.is_empty() || (int[0] != b'0' && int.iter().all(u8::is_ascii_digit));
    let frac_ok = match frac {
        None => !int.is_empty(),
        Some(f) => !f.is_empty() && f.iter().all(u8::is_ascii_digit) && f[f.len() - 1] != b'0',
    };
    int_ok && frac_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        Number::parse_prefix(s.as_bytes()).to_canonical()
    }

    #[test]
    fn arithmetic_beyond_the_range_is_refused_not_saturated() {
        let n = |s: &str| Number::parse_in_range(s.as_bytes()).unwrap();
        let top = n("9e300");
        assert_eq!(top.add(top), n("18e300"), "36 digits times 10^300 are in range");
        assert_eq!(top.checked_add(top), Some(n("18e300")));
        assert_eq!(n("1e300").checked_mul(n("10")), None, "1e301 would saturate to 1e300");
        assert_eq!(n("1e300").mul(n("10")), n("1e300"), "what the unchecked product does");
        assert_eq!(n("-1e300").checked_mul(n("10")), None);
        assert_eq!(n("-1e300").checked_sub(n("1e300")).map(|v| v.to_canonical().len()), Some(302));
        let widest = n(&"9".repeat(36)).mul(n("1e300"));
        assert_eq!(widest.checked_add(n("1e300")), None, "one more carries past the range");
        assert!(widest.checked_add(n("-1e300")).is_some());
        assert_eq!(n("5").checked_add(n("-7")), Some(n("-2")));
        assert_eq!(n("1e-300").checked_mul(n("1e-300")), Some(n("1e-300").mul(n("1e-300"))), "small numbers unchanged");
    }

    #[test]
    fn canonical_forms() {
        for (input, expected) in [
            ("0", "0"),
            ("007", "7"),
            ("0.50", ".5"),
            ("-0.5", "-.5"),
            ("+-3", "-3"),
            ("--3", "3"),
            ("1E3", "1000"),
            ("12abc", "12"),
            ("abc", "0"),
            ("", "0"),
            ("-0", "0"),
            ("1.5e-3", ".0015"),
            ("3.", "3"),
            (".", "0"),
            ("1e", "1"),
        ] {
            assert_eq!(canon(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn canonical_detection() {
        for good in ["0", "1", "-1", ".5", "-.5", "10", "1.25", "123456789012345678901234"] {
            assert!(is_canonical_number(good.as_bytes()), "{good}");
        }
        for bad in ["", "-0", "01", "0.5", "1.", "1.50", "+1", "1e3", " 1", "-", ".", "1a", "-.0"] {
            assert!(!is_canonical_number(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn arithmetic() {
        let n = |s: &str| Number::parse_prefix(s.as_bytes());
        assert_eq!(n("1.1").add(n("2.2")).to_canonical(), "3.3");
        assert_eq!(n("10").sub(n("12.5")).to_canonical(), "-2.5");
        assert_eq!(n("1.5").mul(n("4")).to_canonical(), "6");
        assert_eq!(n("1").div(n("3")).unwrap().to_canonical(), ".333333333333333333");
        assert_eq!(n("7").int_div(n("2")).unwrap().to_canonical(), "3");
        assert_eq!(n("-7").int_div(n("2")).unwrap().to_canonical(), "-3");
        assert_eq!(n("-7").modulo(n("3")).unwrap().to_canonical(), "2");
        assert_eq!(n("7").modulo(n("-3")).unwrap().to_canonical(), "-2");
        assert!(n("1").div(n("0")).is_none());
        assert_eq!(n("9223372036854775807").add(n("1")).to_canonical(), "9223372036854775808");
        assert!(n("10") > n("2"));
        assert!(n("-2") < n(".5"));
    }

    #[test]
    fn canonical_text_is_itself_canonical() {
        for s in ["1E40", "-1E-40", "123.456", "1e300", "99999999999999999999999999999999999999999"] {
            let c = canon(s);
            assert!(is_canonical_number(c.as_bytes()), "{s} -> {c}");
            assert_eq!(canon(&c), c);
        }
    }
}
