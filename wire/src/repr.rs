//! `Value::repr`: a value written as Python's `repr()` writes it.

use std::fmt::Write;

use crate::{Value, MAX_DEPTH};

impl Value {
    /// The value as Python's `repr()` writes it: `None`, `True`, `42`, `1.5`,
    /// `1e+100`, `inf`, `nan`, `(1+2j)`, `b'\x00'`, `'it\'s'` is written
    /// `"it's"` (Python's quote choice), `[1, 'a']`, `(1,)`, `{'k': 1}`,
    /// `{1, 2}`, `set()`, `frozenset({1})`, `<Channel id=3>`.
    ///
    /// Which non-ASCII characters count as printable follows Python for the
    /// common cases (controls, separators, format characters, private use)
    /// without Unicode tables, so an unassigned code point prints as itself
    /// where Python would escape it. Containers nested deeper than
    /// [`MAX_DEPTH`] print as `...`.
    ///
    /// # Examples
    ///
    /// ```
    /// use execnet_wire::{Complex, Value};
    ///
    /// assert_eq!(Value::Float(1e16).repr(), "1e+16");
    /// assert_eq!(Value::Complex(Complex::new(0.0, 2.0)).repr(), "2j");
    /// assert_eq!(Value::Str("it's".into()).repr(), "\"it's\"");
    /// assert_eq!(Value::Tuple(vec![Value::None]).repr(), "(None,)");
    /// ```
    pub fn repr(&self) -> String {
        let mut out = String::new();
        write_repr(self, &mut out, 0);
        out
    }
}

fn write_repr(v: &Value, out: &mut String, depth: usize) {
    let is_container = matches!(
        v,
        Value::List(_) | Value::Tuple(_) | Value::Dict(_) | Value::Set(_) | Value::FrozenSet(_)
    );
    if is_container && depth >= MAX_DEPTH {
        out.push_str("...");
        return;
    }
    match v {
        Value::None => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Float(x) => write_float(*x, true, false, out),
        Value::Complex(c) => {
            if c.re == 0.0 && c.re.is_sign_positive() {
                write_float(c.im, false, false, out);
                out.push('j');
            } else {
                out.push('(');
                write_float(c.re, false, false, out);
                write_float(c.im, false, true, out);
                out.push_str("j)");
            }
        }
        Value::Bytes(b) => write_bytes(b, out),
        Value::Str(s) => write_str(s, out),
        Value::List(items) => {
            out.push('[');
            write_items(items, out, depth);
            out.push(']');
        }
        Value::Tuple(items) => {
            out.push('(');
            write_items(items, out, depth);
            if items.len() == 1 {
                out.push(',');
            }
            out.push(')');
        }
        Value::Dict(pairs) => {
            out.push('{');
            for (i, (k, v)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(k, out, depth + 1);
                out.push_str(": ");
                write_repr(v, out, depth + 1);
            }
            out.push('}');
        }
        Value::Set(items) if items.is_empty() => out.push_str("set()"),
        Value::Set(items) => {
            out.push('{');
            write_items(items, out, depth);
            out.push('}');
        }
        Value::FrozenSet(items) if items.is_empty() => out.push_str("frozenset()"),
        Value::FrozenSet(items) => {
            out.push_str("frozenset({");
            write_items(items, out, depth);
            out.push_str("})");
        }
        Value::Channel(c) => {
            let _ = write!(out, "<Channel id={}>", c.id());
        }
    }
}

fn write_items(items: &[Value], out: &mut String, depth: usize) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_repr(item, out, depth + 1);
    }
}

/// Python's `float_repr_style = 'short'`: the shortest digits that round-trip,
/// fixed notation when the decimal point falls within -4 < decpt <= 16,
/// scientific (`1e+16`, `1.5e-07`) otherwise. `add_dot_0` appends `.0` to an
/// integral fixed-notation number (floats do, complex parts do not);
/// `always_sign` writes `+` for non-negative numbers (the imaginary part).
fn write_float(x: f64, add_dot_0: bool, always_sign: bool, out: &mut String) {
    if x.is_nan() {
        out.push_str(if always_sign { "+nan" } else { "nan" });
        return;
    }
    if x.is_sign_negative() {
        out.push('-');
    } else if always_sign {
        out.push('+');
    }
    if x.is_infinite() {
        out.push_str("inf");
        return;
    }
    // Rust's `{:e}` gives the shortest round-trip digits, as Python's repr.
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let decpt = exp + 1;
    if -4 < decpt && decpt <= 16 {
        if decpt <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', decpt.unsigned_abs() as usize));
            out.push_str(&digits);
        } else {
            let decpt = decpt as usize;
            if decpt >= digits.len() {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', decpt - digits.len()));
                if add_dot_0 {
                    out.push_str(".0");
                }
            } else {
                out.push_str(&digits[..decpt]);
                out.push('.');
                out.push_str(&digits[decpt..]);
            }
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
}

/// Python's choice: single quotes, unless the text has `'` and no `"`.
fn pick_quote(has_single: bool, has_double: bool) -> char {
    if has_single && !has_double {
        '"'
    } else {
        '\''
    }
}

fn write_bytes(b: &[u8], out: &mut String) {
    let quote = pick_quote(b.contains(&b'\''), b.contains(&b'"'));
    out.push('b');
    out.push(quote);
    for &byte in b {
        match byte {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            _ if char::from(byte) == quote => {
                out.push('\\');
                out.push(quote);
            }
            0x20..=0x7e => out.push(char::from(byte)),
            _ => {
                let _ = write!(out, "\\x{byte:02x}");
            }
        }
    }
    out.push(quote);
}

fn write_str(s: &str, out: &mut String) {
    let quote = pick_quote(s.contains('\''), s.contains('"'));
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            _ if c == quote => {
                out.push('\\');
                out.push(quote);
            }
            _ if is_printable(c) => out.push(c),
            _ => {
                let n = u32::from(c);
                let _ = if n <= 0xff {
                    write!(out, "\\x{n:02x}")
                } else if n <= 0xffff {
                    write!(out, "\\u{n:04x}")
                } else {
                    write!(out, "\\U{n:08x}")
                };
            }
        }
    }
    out.push(quote);
}

/// Python's `str.isprintable` for one character, without Unicode tables:
/// controls (Cc), the common format characters (Cf), separators other than
/// the ASCII space (Zs, Zl, Zp) and private use (Co) are not printable.
fn is_printable(c: char) -> bool {
    let n = u32::from(c);
    if n < 0x7f {
        return n >= 0x20;
    }
    !matches!(n,
        0x7f..=0xa0
        | 0xad
        | 0x600..=0x605
        | 0x61c
        | 0x6dd
        | 0x70f
        | 0x890..=0x891
        | 0x8e2
        | 0x1680
        | 0x180e
        | 0x2000..=0x200f
        | 0x2028..=0x202f
        | 0x205f..=0x2064
        | 0x2066..=0x206f
        | 0x3000
        | 0xd800..=0xf8ff
        | 0xfeff
        | 0xfff9..=0xfffb
        | 0x110bd
        | 0x110cd
        | 0x13430..=0x1343f
        | 0x1bca0..=0x1bca3
        | 0x1d173..=0x1d17a
        | 0xe0001
        | 0xe0020..=0xe007f
        | 0xf0000..)
}

#[cfg(test)]
mod tests {
    use crate::{ChannelRef, Complex, Int, Value};

    fn float(x: f64) -> String {
        Value::Float(x).repr()
    }

    #[test]
    fn floats_as_python() {
        let cases = [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.5, "1.5"),
            (1.0, "1.0"),
            (100.0, "100.0"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e100, "1e+100"),
            (-2.5e300, "-2.5e+300"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (0.3, "0.3"),
            (1.0 / 3.0, "0.3333333333333333"),
        ];
        for (x, want) in cases {
            assert_eq!(float(x), want, "{x:e}");
        }
    }

    #[test]
    fn complex_as_python() {
        let c = |re, im| Value::Complex(Complex::new(re, im)).repr();
        assert_eq!(c(1.0, 2.0), "(1+2j)");
        assert_eq!(c(0.0, 2.0), "2j");
        assert_eq!(c(0.0, 0.0), "0j");
        assert_eq!(c(-0.0, 1.0), "(-0+1j)");
        assert_eq!(c(1.5, -0.0), "(1.5-0j)");
        assert_eq!(c(1e16, f64::NAN), "(1e+16+nanj)");
        assert_eq!(c(1.0, f64::NEG_INFINITY), "(1-infj)");
        assert_eq!(c(0.0, -1.0), "-1j");
    }

    #[test]
    fn strings_as_python() {
        let s = |x: &str| Value::Str(x.to_owned()).repr();
        assert_eq!(s("abc"), "'abc'");
        assert_eq!(s("it's"), "\"it's\"");
        assert_eq!(s("'\""), "'\\'\"'");
        assert_eq!(s("a\\b\n\t\r\x00\x7f"), "'a\\\\b\\n\\t\\r\\x00\\x7f'");
        assert_eq!(s("hé€😀"), "'hé€😀'");
        assert_eq!(
            s("\u{a0}\u{200b}\u{2028}\u{e000}\u{f0000}"),
            "'\\xa0\\u200b\\u2028\\ue000\\U000f0000'"
        );
    }

    #[test]
    fn bytes_as_python() {
        let b = |x: &[u8]| Value::Bytes(x.to_vec()).repr();
        assert_eq!(b(b"\x00\xff"), "b'\\x00\\xff'");
        assert_eq!(b(b"it's"), "b\"it's\"");
        assert_eq!(b(b"'\""), "b'\\'\"'");
        assert_eq!(b(b""), "b''");
        assert_eq!(b(b"a\\\n"), "b'a\\\\\\n'");
    }

    #[test]
    fn containers_as_python() {
        let one = Value::from(1);
        let a = Value::from("a");
        assert_eq!(Value::List(vec![one.clone(), a.clone()]).repr(), "[1, 'a']");
        assert_eq!(Value::Tuple(vec![one.clone()]).repr(), "(1,)");
        assert_eq!(Value::Tuple(vec![]).repr(), "()");
        assert_eq!(
            Value::Dict(vec![(Value::from("k"), one.clone())]).repr(),
            "{'k': 1}"
        );
        assert_eq!(Value::Dict(vec![]).repr(), "{}");
        assert_eq!(
            Value::Set(vec![one.clone(), Value::from(2)]).repr(),
            "{1, 2}"
        );
        assert_eq!(Value::Set(vec![]).repr(), "set()");
        assert_eq!(Value::FrozenSet(vec![one.clone()]).repr(), "frozenset({1})");
        assert_eq!(Value::FrozenSet(vec![]).repr(), "frozenset()");
        assert_eq!(Value::Channel(ChannelRef::new(3)).repr(), "<Channel id=3>");
        assert_eq!(Value::Bool(true).repr(), "True");
        assert_eq!(Value::None.repr(), "None");
        assert_eq!(
            Value::Int(Int::from(-(1i128 << 100))).repr(),
            "-1267650600228229401496703205376"
        );
    }

    #[test]
    fn deep_nesting_is_cut() {
        let mut v = Value::None;
        for _ in 0..1000 {
            v = Value::List(vec![v]);
        }
        assert!(v.repr().contains("[...]"));
    }
}
