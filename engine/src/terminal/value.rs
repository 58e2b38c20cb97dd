//! Values are byte strings; these helpers read them as numbers and truth values the way
//! ObjectScript does (the leading numeric part, `"12abc"` is 12, `"abc"` is 0).

use super::error::TermError;
use super::limits::MAX_INTEGER_POWER;
use crate::globals::number::is_canonical_number;
use crate::globals::Number;
use std::cmp::Ordering;

pub fn num(v: &[u8]) -> Number {
    Number::parse_prefix(v)
}

pub fn from_num(n: Number) -> Vec<u8> {
    n.to_canonical().into_bytes()
}

pub fn truth(v: &[u8]) -> bool {
    !num(v).is_zero()
}

pub fn from_bool(b: bool) -> Vec<u8> {
    if b {
        b"1".to_vec()
    } else {
        b"0".to_vec()
    }
}

pub fn from_int(i: i64) -> Vec<u8> {
    i.to_string().into_bytes()
}

/// The value as an integer for a position or count argument (`$E(s,2.7)` is `$E(s,2)`),
/// saturated to the `i64` range.
pub fn int(v: &[u8]) -> i64 {
    let n = num(v).trunc();
    n.to_i64().unwrap_or(if n < Number::ZERO { i64::MIN } else { i64::MAX })
}

/// `a ** b`: exact for integer exponents up to [`MAX_INTEGER_POWER`], floating point
/// (about 16 significant digits) otherwise; a power beyond the engine's range is
/// `<MAXNUMBER>`, never a saturated number.
pub fn pow(a: Number, b: Number) -> Result<Number, TermError> {
    let maxnumber = || {
        TermError::new(
            "MAXNUMBER",
            format!("{} ** {} is beyond the engine's range", a.to_canonical(), b.to_canonical()),
        )
    };
    if let Some(e) = b.to_i64().filter(|e| e.abs() <= MAX_INTEGER_POWER) {
        if a.is_zero() && e < 0 {
            return Err(TermError::new("ILLEGAL VALUE", "0 to a negative power"));
        }
        if e < 0 {
            // A tiny power is no error: the small end of the range saturates toward zero.
            let mut result = Number::from(1);
            let mut base = a;
            let mut k = e.unsigned_abs();
            while k > 0 {
                if k & 1 == 1 {
                    result = result.mul(base);
                }
                base = base.mul(base);
                k >>= 1;
            }
            return Number::from(1).div(result).ok_or_else(|| TermError::new("DIVIDE", ""));
        }
        let mut result = Number::from(1);
        let mut base = a;
        let mut k = e.unsigned_abs();
        while k > 0 {
            if k & 1 == 1 {
                result = result.checked_mul(base).ok_or_else(maxnumber)?;
            }
            k >>= 1;
            if k > 0 {
                base = base.checked_mul(base).ok_or_else(maxnumber)?;
            }
        }
        return Ok(result);
    }
    let (x, y): (f64, f64) = (a.to_canonical().parse().unwrap_or(0.0), b.to_canonical().parse().unwrap_or(0.0));
    let r = x.powf(y);
    if r.is_infinite() {
        return Err(maxnumber());
    }
    if r.is_nan() {
        return Err(TermError::new("ILLEGAL VALUE", format!("{} ** {}", a.to_canonical(), b.to_canonical())));
    }
    Number::parse_in_range(format!("{r:e}").as_bytes()).ok_or_else(maxnumber)
}

/// Subscript collation (`]]`): `""` first, canonical numbers in numeric order, then other
/// strings in byte order.
pub fn collate(a: &[u8], b: &[u8]) -> Ordering {
    let rank = |v: &[u8]| match (v.is_empty(), is_canonical_number(v)) {
        (true, _) => 0,
        (false, true) => 1,
        (false, false) => 2,
    };
    match (rank(a), rank(b)) {
        (1, 1) => num(a).cmp(&num(b)),
        (ra, rb) if ra != rb => ra.cmp(&rb),
        _ => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_collation() {
        let p = |a: &str, b: &str| pow(num(a.as_bytes()), num(b.as_bytes())).unwrap().to_canonical();
        assert_eq!(p("2", "10"), "1024");
        assert_eq!(p("2", "-2"), ".25");
        assert_eq!(p("4", ".5"), "2");
        // Beyond the range: <MAXNUMBER>, exact or floating point; a tiny power is not.
        let code = |a: &str, b: &str| pow(num(a.as_bytes()), num(b.as_bytes())).unwrap_err().code;
        assert_eq!(code("10", "301"), "MAXNUMBER");
        assert_eq!(code("1e250", "1.5"), "MAXNUMBER");
        assert_eq!(code("-8", ".5"), "ILLEGAL VALUE");
        assert_eq!(p("10", "300"), format!("1{}", "0".repeat(300)));
        assert!(pow(num(b"10"), num(b"-400")).is_ok(), "a tiny power is no error");
        assert_eq!(int(b"2.7"), 2);
        assert_eq!(int(b"-2.7"), -2);
        assert!(truth(b"1abc") && !truth(b"abc") && truth(b".1"));
        assert_eq!(collate(b"10", b"9"), Ordering::Greater);
        assert_eq!(collate(b"a", b"10"), Ordering::Greater);
        assert_eq!(collate(b"", b"-1"), Ordering::Less);
    }
}
