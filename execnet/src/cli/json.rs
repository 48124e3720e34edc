//! Values as JSON text, for `--json` output.
//!
//! The mapping (also in `execnet exec --help`):
//!
//! | Python | JSON |
//! |---|---|
//! | `None` | `null` |
//! | `bool` | `true` / `false` |
//! | `int` | a number, exactly, whatever its size (`12345678901234567890123`) |
//! | `float` | a number as Python's repr writes it (`0.1`, `1e+100`); NaN and infinities as the strings `"NaN"`, `"Infinity"`, `"-Infinity"` (JSON has no such numbers) |
//! | `complex` | `{"real": x, "imag": y}` |
//! | `str` | a string |
//! | `bytes` | an array of the byte values (`[104, 105]`) |
//! | `list`, `tuple`, `set`, `frozenset` | an array |
//! | `dict` | an object when every key is a `str`, else an array of `[key, value]` pairs |
//! | channel | `{"channel": ID}` |
//!
//! Big ints are written as plain digits rather than through
//! `serde_json::Number`: JSON allows any number of digits, and readers with
//! big-number support (Python's `json`, `jq --arbitrary-precision`) read them
//! exactly; turning on serde_json's `arbitrary_precision` would change
//! serde_json for every crate in the build.

use std::fmt::Write;

use execnet::Value;

/// `value` as one line of JSON.
pub fn to_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, &mut out);
    out
}

/// A JSON string literal for `text`.
pub fn string(text: &str) -> String {
    // Serializing a str cannot fail.
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_string())
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::None => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Float(x) => write_float(*x, out),
        Value::Complex(c) => {
            out.push_str("{\"real\": ");
            write_float(c.re, out);
            out.push_str(", \"imag\": ");
            write_float(c.im, out);
            out.push('}');
        }
        Value::Str(s) => out.push_str(&string(s)),
        Value::Bytes(bytes) => {
            out.push('[');
            for (i, byte) in bytes.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "{byte}");
            }
            out.push(']');
        }
        Value::List(items) | Value::Tuple(items) | Value::Set(items) | Value::FrozenSet(items) => {
            write_array(items, out)
        }
        Value::Dict(pairs) if pairs.iter().all(|(k, _)| matches!(k, Value::Str(_))) => {
            out.push('{');
            for (i, (key, value)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(key, out);
                out.push_str(": ");
                write_value(value, out);
            }
            out.push('}');
        }
        Value::Dict(pairs) => {
            out.push('[');
            for (i, (key, value)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push('[');
                write_value(key, out);
                out.push_str(", ");
                write_value(value, out);
                out.push(']');
            }
            out.push(']');
        }
        Value::Channel(c) => {
            let _ = write!(out, "{{\"channel\": {}}}", c.id());
        }
        // A kind of value added later: its repr, as a string.
        other => out.push_str(&string(&other.repr())),
    }
}

fn write_array(items: &[Value], out: &mut String) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_value(item, out);
    }
    out.push(']');
}

fn write_float(x: f64, out: &mut String) {
    if x.is_nan() {
        out.push_str("\"NaN\"");
    } else if x.is_infinite() {
        out.push_str(if x > 0.0 {
            "\"Infinity\""
        } else {
            "\"-Infinity\""
        });
    } else {
        // Python's repr of a finite float is a valid JSON number.
        out.push_str(&Value::Float(x).repr());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use execnet::{Complex, Int};

    fn parse(text: &str) -> serde_json::Value {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn scalars() {
        assert_eq!(to_json(&Value::None), "null");
        assert_eq!(to_json(&Value::Bool(true)), "true");
        assert_eq!(to_json(&Value::from(-7)), "-7");
        assert_eq!(to_json(&Value::Float(0.1)), "0.1");
        assert_eq!(to_json(&Value::Float(2.0)), "2.0");
        assert_eq!(to_json(&Value::Float(1e100)), "1e+100");
        assert_eq!(to_json(&Value::Float(f64::NAN)), "\"NaN\"");
        assert_eq!(to_json(&Value::Float(f64::NEG_INFINITY)), "\"-Infinity\"");
        assert_eq!(to_json(&Value::from("a\"\n")), r#""a\"\n""#);
        assert_eq!(to_json(&Value::Bytes(b"hi".to_vec())), "[104, 105]");
        assert_eq!(
            parse(&to_json(&Value::Complex(Complex::new(1.0, -2.5)))),
            serde_json::json!({"real": 1.0, "imag": -2.5})
        );
    }

    #[test]
    fn big_ints_are_exact_numbers() {
        let big = Int::from(u128::MAX);
        let text = to_json(&Value::Int(big));
        assert_eq!(text, "340282366920938463463374607431768211455");
        assert!(parse(&text).is_number());
    }

    #[test]
    fn containers() {
        let v = Value::Tuple(vec![
            Value::List(vec![Value::from(1)]),
            Value::Set(vec![Value::from("x")]),
            Value::Dict(vec![(Value::from("k"), Value::None)]),
            Value::Dict(vec![(Value::from(1), Value::from(2))]),
        ]);
        assert_eq!(
            parse(&to_json(&v)),
            serde_json::json!([[1], ["x"], {"k": null}, [[1, 2]]])
        );
    }

    #[test]
    fn every_finite_float_repr_is_json() {
        for x in [0.0, -0.0, 1.5e-7, 123456789.125, 1e16, 5e-324, f64::MAX] {
            let text = to_json(&Value::Float(x));
            assert_eq!(parse(&text).as_f64(), Some(x), "{text}");
        }
    }
}
