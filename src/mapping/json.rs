//! JSON text written straight into a byte buffer, for answers: object keys are escaped once
//! when a shape is built, and each string value is escaped in one pass over its bytes.

use serde_json::Value;

/// `"key":`, escaped, to be copied before each value of that key.
pub fn key(name: &str) -> Box<[u8]> {
    let mut out = Vec::with_capacity(name.len() + 3);
    write_str(&mut out, name);
    out.push(b':');
    out.into_boxed_slice()
}

/// What each byte turns into inside a JSON string: 0 for itself, else the letter after the
/// backslash (`u` for a `\u00XX` escape).
const ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// A JSON string: quotes, backslashes and control characters escaped, the rest as is.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut from = 0;
    for (at, &b) in bytes.iter().enumerate() {
        let escape = ESCAPE[b as usize];
        if escape == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[from..at]);
        match escape {
            b'u' => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xf) as usize],
            ]),
            letter => out.extend_from_slice(&[b'\\', letter]),
        }
        from = at + 1;
    }
    out.extend_from_slice(&bytes[from..]);
    out.push(b'"');
}

/// Any JSON value. (Canonical values were read with serde_json's nesting limit, so the
/// recursion into arrays and objects is bounded.)
pub fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => out.extend_from_slice(itoa::Buffer::new().format(u).as_bytes()),
            (None, Some(i)) => out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()),
            _ => out.extend_from_slice(n.to_string().as_bytes()),
        },
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (n, (k, v)) in map.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                write_str(out, k);
                out.push(b':');
                write_value(out, v);
            }
            out.push(b'}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever the value, serde_json reads back what was written, and writes the same text.
    #[test]
    fn writes_what_serde_json_writes() {
        let control: String = (0u8..0x20).map(char::from).collect();
        let values = [
            serde_json::json!(null),
            serde_json::json!([true, false, 0, -7, 18446744073709551615u64, 1.5, -0.25e-10]),
            serde_json::json!({"a\"b": "q\"uo\\te", "ctl": control, "é": "ünï €𝄞", "/": "a/b"}),
            serde_json::json!({"nested": {"list": [{"x": []}, {}], "s": ""}}),
        ];
        for value in values {
            let mut out = Vec::new();
            write_value(&mut out, &value);
            let text = String::from_utf8(out).expect("UTF-8");
            assert_eq!(serde_json::from_str::<Value>(&text).expect("valid"), value);
            assert_eq!(text, value.to_string());
        }
        assert_eq!(&*key("lo\"gin"), br#""lo\"gin":"#);
    }
}
