//! `Int`: an integer of any size, exactly (Python's `int`).

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use num_bigint::BigInt;
use num_traits::{Signed, ToPrimitive};

/// An integer of any size, held exactly, as Python's `int`.
///
/// Values that fit in an `i64` are stored inline; larger ones as a
/// [`num_bigint::BigInt`]. The representation is canonical (a big value never
/// fits in an `i64`), so the derived equality and hashing are exact.
///
/// # Examples
///
/// ```
/// use execnet_wire::Int;
///
/// let small = Int::from(42u8);
/// assert_eq!(small.to_i64(), Some(42));
/// let big = Int::from(u128::MAX);
/// assert_eq!(big.to_i64(), None);
/// assert_eq!(big.to_u128(), Some(u128::MAX));
/// assert_eq!(big.to_string(), "340282366920938463463374607431768211455");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Int(Repr);

#[derive(Clone, PartialEq, Eq, Hash)]
enum Repr {
    Small(i64),
    // Boxed so that `Value` stays small; never holds a value that fits in i64.
    Big(Box<BigInt>),
}

impl Int {
    /// The value as an `i64`, if it fits.
    pub fn to_i64(&self) -> Option<i64> {
        match &self.0 {
            Repr::Small(n) => Some(*n),
            Repr::Big(_) => None,
        }
    }

    /// The value as a `u64`, if it fits.
    pub fn to_u64(&self) -> Option<u64> {
        match &self.0 {
            Repr::Small(n) => u64::try_from(*n).ok(),
            Repr::Big(b) => b.to_u64(),
        }
    }

    /// The value as an `i128`, if it fits.
    pub fn to_i128(&self) -> Option<i128> {
        match &self.0 {
            Repr::Small(n) => Some(i128::from(*n)),
            Repr::Big(b) => b.to_i128(),
        }
    }

    /// The value as a `u128`, if it fits.
    pub fn to_u128(&self) -> Option<u128> {
        match &self.0 {
            Repr::Small(n) => u128::try_from(*n).ok(),
            Repr::Big(b) => b.to_u128(),
        }
    }

    /// The nearest `f64` (infinite when the value is beyond `f64`'s range).
    pub fn to_f64(&self) -> f64 {
        match &self.0 {
            // Rounding to the nearest float is what Python's float(int) does.
            #[allow(clippy::cast_precision_loss)]
            Repr::Small(n) => *n as f64,
            Repr::Big(b) => b.to_f64().unwrap_or(if b.is_negative() {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            }),
        }
    }

    /// The value as a [`BigInt`].
    pub fn to_bigint(&self) -> BigInt {
        match &self.0 {
            Repr::Small(n) => BigInt::from(*n),
            Repr::Big(b) => (**b).clone(),
        }
    }

    /// Whether the value fits in an `i64` (it then travels as wire tag 2).
    pub fn is_i64(&self) -> bool {
        matches!(self.0, Repr::Small(_))
    }

    /// Whether the value is below zero.
    pub fn is_negative(&self) -> bool {
        match &self.0 {
            Repr::Small(n) => *n < 0,
            Repr::Big(b) => b.is_negative(),
        }
    }

    /// Reads two's complement little-endian bytes, as Python's
    /// `int.from_bytes(b, "little", signed=True)` (empty input is 0).
    pub fn from_signed_bytes_le(bytes: &[u8]) -> Int {
        if bytes.len() <= 8 {
            let fill = match bytes.last() {
                Some(b) if b & 0x80 != 0 => 0xff,
                _ => 0,
            };
            let mut word = [fill; 8];
            word[..bytes.len()].copy_from_slice(bytes);
            return Int(Repr::Small(i64::from_le_bytes(word)));
        }
        Int::from(BigInt::from_signed_bytes_le(bytes))
    }

    /// Two's complement little-endian bytes of minimal length, as Python's
    /// `n.to_bytes(length, "little", signed=True)` with the smallest length
    /// that holds `n` (at least one byte).
    pub fn to_signed_bytes_le(&self) -> Vec<u8> {
        match &self.0 {
            Repr::Small(n) => {
                let bytes = n.to_le_bytes();
                let mut len = 8;
                // Drop a top byte while it only repeats the sign of the byte below.
                while len > 1 {
                    let top = bytes[len - 1];
                    let below_negative = bytes[len - 2] & 0x80 != 0;
                    if (top == 0 && !below_negative) || (top == 0xff && below_negative) {
                        len -= 1;
                    } else {
                        break;
                    }
                }
                bytes[..len].to_vec()
            }
            Repr::Big(b) => b.to_signed_bytes_le(),
        }
    }
}

macro_rules! from_small {
    ($($t:ty),*) => {$(
        impl From<$t> for Int {
            fn from(n: $t) -> Int {
                Int(Repr::Small(i64::from(n)))
            }
        }
    )*};
}
from_small!(i8, i16, i32, i64, u8, u16, u32);

macro_rules! from_wide {
    ($($t:ty),*) => {$(
        impl From<$t> for Int {
            fn from(n: $t) -> Int {
                match i64::try_from(n) {
                    Ok(small) => Int(Repr::Small(small)),
                    Err(_) => Int(Repr::Big(Box::new(BigInt::from(n)))),
                }
            }
        }
    )*};
}
from_wide!(i128, u64, u128, isize, usize);

impl From<BigInt> for Int {
    fn from(n: BigInt) -> Int {
        match n.to_i64() {
            Some(small) => Int(Repr::Small(small)),
            None => Int(Repr::Big(Box::new(n))),
        }
    }
}

impl From<Int> for BigInt {
    fn from(n: Int) -> BigInt {
        match n.0 {
            Repr::Small(n) => BigInt::from(n),
            Repr::Big(b) => *b,
        }
    }
}

impl PartialOrd for Int {
    fn partial_cmp(&self, other: &Int) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Int {
    fn cmp(&self, other: &Int) -> Ordering {
        match (&self.0, &other.0) {
            (Repr::Small(a), Repr::Small(b)) => a.cmp(b),
            (Repr::Big(a), Repr::Big(b)) => a.cmp(b),
            // A big value lies outside i64's range, so its sign decides.
            (Repr::Small(_), Repr::Big(b)) => {
                if b.is_negative() {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            (Repr::Big(a), Repr::Small(_)) => {
                if a.is_negative() {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
        }
    }
}

impl fmt::Display for Int {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Small(n) => fmt::Display::fmt(n, f),
            Repr::Big(b) => fmt::Display::fmt(b, f),
        }
    }
}

impl fmt::Debug for Int {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The error of parsing an [`Int`] from a string that is not a decimal integer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseIntError {
    text: String,
}

impl fmt::Display for ParseIntError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a decimal integer: {:?}", self.text)
    }
}

impl std::error::Error for ParseIntError {}

impl FromStr for Int {
    type Err = ParseIntError;

    /// Parses a decimal integer with an optional sign (`"-12"`, `"+7"`).
    fn from_str(s: &str) -> Result<Int, ParseIntError> {
        if let Ok(n) = s.parse::<i64>() {
            return Ok(Int(Repr::Small(n)));
        }
        let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseIntError { text: s.to_owned() });
        }
        BigInt::from_str(s)
            .map(Int::from)
            .map_err(|_| ParseIntError { text: s.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_representation() {
        assert!(Int::from(BigInt::from(5)).is_i64());
        assert_eq!(Int::from(BigInt::from(5)), Int::from(5u8));
        assert!(!Int::from(u64::MAX).is_i64());
        assert_eq!(Int::from(i128::from(i64::MIN)), Int::from(i64::MIN));
    }

    #[test]
    fn conversions() {
        assert_eq!(Int::from(-1i8).to_u64(), None);
        assert_eq!(Int::from(u64::MAX).to_u64(), Some(u64::MAX));
        assert_eq!(Int::from(i128::MIN).to_i128(), Some(i128::MIN));
        assert_eq!(Int::from(i128::MIN).to_u128(), None);
        assert_eq!(Int::from(3u8).to_f64(), 3.0);
    }

    #[test]
    fn ordering_across_representations() {
        let values = [
            Int::from(i128::MIN),
            Int::from(i64::MIN),
            Int::from(-1),
            Int::from(0),
            Int::from(i64::MAX),
            Int::from(u64::MAX),
            Int::from(u128::MAX),
        ];
        for (i, a) in values.iter().enumerate() {
            for (j, b) in values.iter().enumerate() {
                assert_eq!(a.cmp(b), i.cmp(&j), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn signed_bytes() {
        let cases: &[(i128, &[u8])] = &[
            (0, &[0]),
            (127, &[0x7f]),
            (128, &[0x80, 0]),
            (-1, &[0xff]),
            (-128, &[0x80]),
            (-129, &[0x7f, 0xff]),
            (
                i64::MAX as i128,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
            ),
            (1 << 64, &[0, 0, 0, 0, 0, 0, 0, 0, 1]),
        ];
        for (n, bytes) in cases {
            let int = Int::from(*n);
            assert_eq!(int.to_signed_bytes_le(), *bytes, "{n}");
            assert_eq!(Int::from_signed_bytes_le(bytes), int);
        }
        assert_eq!(Int::from_signed_bytes_le(&[]), Int::from(0));
        assert_eq!(
            Int::from_signed_bytes_le(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            Int::from(1)
        );
    }

    #[test]
    fn parse_and_display() {
        let big = "-123456789012345678901234567890";
        assert_eq!(
            big.parse::<Int>().map(|i| i.to_string()),
            Ok(big.to_owned())
        );
        assert_eq!("+7".parse::<Int>(), Ok(Int::from(7)));
        assert!("1_000".parse::<Int>().is_err());
        assert!("".parse::<Int>().is_err());
        assert!("-".parse::<Int>().is_err());
    }
}
