//! A strict JSON reader (RFC 8259) for upstream answers, read straight from their bytes: the
//! values a caller asks for are built as `serde_json` values, everything else is checked and
//! skipped without being built. Nesting is bounded, and skipping never recurses.

use std::borrow::Cow;
use std::fmt;

use serde_json::{Map, Number, Value};

/// The deepest nesting of arrays and objects an answer may have (serde_json's own limit).
const MAX_DEPTH: u32 = 127;

/// Why an answer is not JSON, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    pub at: usize,
    pub what: &'static str,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed JSON at byte {}: {}", self.at, self.what)
    }
}

impl std::error::Error for Malformed {}

pub struct Reader<'a> {
    text: &'a str,
    at: usize,
    /// Arrays and objects open around the reader's place.
    depth: u32,
}

impl<'a> Reader<'a> {
    /// A reader over `body`, which must be UTF-8 (checked once, here).
    pub fn new(body: &'a [u8]) -> Result<Reader<'a>, Malformed> {
        // (simdutf8: the same check as `std::str::from_utf8`, several bytes at a time.)
        let text = simdutf8::compat::from_utf8(body).map_err(|e| Malformed {
            at: e.valid_up_to(),
            what: "not UTF-8",
        })?;
        Ok(Reader {
            text,
            at: 0,
            depth: 0,
        })
    }

    /// A reader over text already checked (a value found in an answer read before).
    pub fn over(text: &'a str) -> Reader<'a> {
        Reader {
            text,
            at: 0,
            depth: 0,
        }
    }

    /// The whole text read.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// How far into the text the reader is, in bytes.
    pub fn place(&self) -> usize {
        self.at
    }

    /// An error at the reader's place.
    pub fn malformed(&self, what: &'static str) -> Malformed {
        Malformed { at: self.at, what }
    }

    fn fail<T>(&self, what: &'static str) -> Result<T, Malformed> {
        Err(self.malformed(what))
    }

    /// The next byte that is not whitespace, left unread.
    #[inline]
    pub fn peek(&mut self) -> Option<u8> {
        let bytes = self.text.as_bytes();
        // Most answers are compact: whitespace is at or below b' ', most bytes are above it.
        if let Some(&c) = bytes.get(self.at).filter(|&&c| c > b' ') {
            return Some(c);
        }
        while let Some(&c) = bytes.get(self.at) {
            if !matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                return Some(c);
            }
            self.at += 1;
        }
        None
    }

    fn eat(&mut self, c: u8, what: &'static str) -> Result<(), Malformed> {
        if self.peek() != Some(c) {
            return self.fail(what);
        }
        self.at += 1;
        Ok(())
    }

    /// Only whitespace may follow the value read.
    pub fn end(&mut self) -> Result<(), Malformed> {
        match self.peek() {
            None => Ok(()),
            Some(_) => self.fail("more after the value"),
        }
    }

    /// Steps into an array or object (the reader is at its opening bracket).
    fn enter(&mut self) -> Result<(), Malformed> {
        if self.depth >= MAX_DEPTH {
            return self.fail("nested too deeply");
        }
        self.depth += 1;
        self.at += 1;
        Ok(())
    }

    /// Steps out of an array or object if the next byte closes it.
    fn close(&mut self, bracket: u8) -> bool {
        if self.peek() != Some(bracket) {
            return false;
        }
        self.at += 1;
        self.depth -= 1;
        true
    }

    /// Reads the object the reader is at, member by member: `member` is handed each key and
    /// must read or skip its value.
    pub fn object(
        &mut self,
        member: impl FnMut(&mut Self, Cow<'a, str>) -> Result<(), Malformed>,
    ) -> Result<(), Malformed> {
        self.members(|r, _| r.string(), member)
    }

    /// Reads an object like [`Reader::object`], handing `member` what `lookup` finds for each
    /// key. The objects of one list are mostly alike, so what was found is remembered in
    /// `memo` by the key's place: where the key at a place has the same text as the last
    /// object's, its bytes are compared instead of read and looked up again. (The text
    /// remembered is the key's without escapes and with its closing quote, so equal bytes are
    /// an equal key.)
    pub fn object_remembered<T: Copy>(
        &mut self,
        memo: &mut Vec<Option<(&'a str, T)>>,
        lookup: impl Fn(&str) -> T,
        member: impl FnMut(&mut Self, T) -> Result<(), Malformed>,
    ) -> Result<(), Malformed> {
        let key = |r: &mut Self, place: usize| {
            if let Some(Some((text, found))) = memo.get(place) {
                let rest = r.text.as_bytes().get(r.at..).unwrap_or_default();
                if same_start(rest, text.as_bytes()) {
                    r.at += text.len();
                    return Ok(*found);
                }
            }
            let start = r.at;
            let key = r.string()?;
            let found = lookup(&key);
            let remembered = match key {
                Cow::Borrowed(_) => r.text.get(start..r.at).map(|text| (text, found)),
                Cow::Owned(_) => None,
            };
            match memo.get_mut(place) {
                Some(slot) => *slot = remembered,
                None => memo.push(remembered),
            }
            Ok(found)
        };
        self.members(key, member)
    }

    /// Reads the object the reader is at: `key` reads each key (the reader is past its opening
    /// quote; it is given the key's place), `member` the value.
    fn members<K>(
        &mut self,
        mut key: impl FnMut(&mut Self, usize) -> Result<K, Malformed>,
        mut member: impl FnMut(&mut Self, K) -> Result<(), Malformed>,
    ) -> Result<(), Malformed> {
        self.enter()?;
        if self.close(b'}') {
            return Ok(());
        }
        let mut place = 0;
        loop {
            self.eat(b'"', "expected a key")?;
            let found = key(self, place)?;
            self.eat(b':', "expected ':'")?;
            member(self, found)?;
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return self.fail("expected ',' or '}'"),
            }
            place += 1;
        }
    }

    /// Reads the array the reader is at: `item` must read or skip each value.
    pub fn array(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<(), Malformed>,
    ) -> Result<(), Malformed> {
        self.enter()?;
        if self.close(b']') {
            return Ok(());
        }
        loop {
            item(self)?;
            if self.close(b']') {
                return Ok(());
            }
            self.eat(b',', "expected ',' or ']'")?;
        }
    }

    /// Reads one value and builds it.
    pub fn value(&mut self) -> Result<Value, Malformed> {
        match self.peek() {
            Some(b'"') => {
                self.at += 1;
                Ok(Value::String(self.string()?.into_owned()))
            }
            Some(b'{') => {
                let mut map = Map::new();
                self.object(|r, key| {
                    let value = r.value()?;
                    map.insert(key.into_owned(), value);
                    Ok(())
                })?;
                Ok(Value::Object(map))
            }
            Some(b'[') => {
                let mut items = Vec::new();
                self.array(|r| {
                    items.push(r.value()?);
                    Ok(())
                })?;
                Ok(Value::Array(items))
            }
            Some(b'-' | b'0'..=b'9') => self.number().map(Value::Number),
            Some(b't') => self.word("true").map(|()| Value::Bool(true)),
            Some(b'f') => self.word("false").map(|()| Value::Bool(false)),
            Some(b'n') => self.word("null").map(|()| Value::Null),
            _ => self.fail("expected a value"),
        }
    }

    /// Reads one value and builds it in `dest` (strings and numbers straight there).
    pub fn value_into(&mut self, dest: &mut Value) -> Result<(), Malformed> {
        match self.peek() {
            Some(b'"') => {
                self.at += 1;
                *dest = Value::String(self.string()?.into_owned());
            }
            Some(b'-' | b'0'..=b'9') => *dest = Value::Number(self.number()?),
            _ => *dest = self.value()?,
        }
        Ok(())
    }

    /// Checks one value as strictly as [`Reader::value`] and steps over it, without recursion
    /// and without building anything (a string is read as [`Reader::string`] reads it, so it
    /// is unescaped only when it has escapes).
    pub fn skip(&mut self) -> Result<(), Malformed> {
        // Most values skipped are strings and other scalars: stepped over here, without the
        // bookkeeping of nested ones.
        match self.peek() {
            Some(b'"') => {
                self.at += 1;
                self.skip_string().map(|_| ())
            }
            Some(b'-' | b'0'..=b'9') => self.skip_number(),
            Some(b'{' | b'[') => self.skip_nested(),
            Some(b't') => self.word("true"),
            Some(b'f') => self.word("false"),
            Some(b'n') => self.word("null"),
            _ => self.fail("expected a value"),
        }
    }

    /// [`Reader::skip`] for an array or object (the reader is at its opening bracket).
    fn skip_nested(&mut self) -> Result<(), Malformed> {
        let base = self.depth;
        // Bit `d` is set while the container at depth `d + 1` is an object.
        let mut objects: u128 = 0;
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.at += 1;
                    self.skip_string()?;
                }
                Some(b'{') => {
                    self.enter()?;
                    objects |= 1 << (self.depth - 1);
                    if !self.close(b'}') {
                        self.skip_key()?;
                        continue;
                    }
                }
                Some(b'[') => {
                    self.enter()?;
                    objects &= !(1 << (self.depth - 1));
                    if !self.close(b']') {
                        continue;
                    }
                }
                Some(b'-' | b'0'..=b'9') => self.skip_number()?,
                Some(b't') => self.word("true")?,
                Some(b'f') => self.word("false")?,
                Some(b'n') => self.word("null")?,
                _ => return self.fail("expected a value"),
            }
            // A value is complete: close what ends here, then on to the next value.
            loop {
                if self.depth == base {
                    return Ok(());
                }
                let in_object = objects >> (self.depth - 1) & 1 == 1;
                if self.close(if in_object { b'}' } else { b']' }) {
                    continue;
                }
                self.eat(b',', "expected ',' or the end of the array or object")?;
                if in_object {
                    self.skip_key()?;
                }
                break;
            }
        }
    }

    /// Checks and steps over one value as [`Reader::skip`] does; true where it was a string
    /// without escapes (its text between the quotes is then the string itself).
    pub fn skip_noting_plain(&mut self) -> Result<bool, Malformed> {
        if self.peek() != Some(b'"') {
            return self.skip().map(|()| false);
        }
        self.at += 1;
        self.skip_string()
    }

    /// Checks a string as [`Reader::string`] reads it and steps over it (the reader is past
    /// its opening quote); true where it has no escapes.
    fn skip_string(&mut self) -> Result<bool, Malformed> {
        let end = self.plain_run(self.at)?;
        if self.text.as_bytes().get(end) == Some(&b'"') {
            self.at = end + 1;
            return Ok(true);
        }
        self.string().map(|_| false)
    }

    fn skip_key(&mut self) -> Result<(), Malformed> {
        self.eat(b'"', "expected a key")?;
        self.string()?;
        self.eat(b':', "expected ':'")
    }

    fn word(&mut self, word: &'static str) -> Result<(), Malformed> {
        if !self.text.as_bytes()[self.at..].starts_with(word.as_bytes()) {
            return self.fail("expected a value");
        }
        self.at += word.len();
        Ok(())
    }

    /// Where the plain text of a string from `from` ends: at its closing quote or its next
    /// escape. A string may not hold control characters. Eight bytes are looked at a time, as
    /// one `u64`: a byte is flagged when it is a quote, a backslash or below 0x20, and the
    /// lowest flagged byte is the first such one (a borrow only ever flags bytes above it).
    #[inline]
    fn plain_run(&self, from: usize) -> Result<usize, Malformed> {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = ONES * 0x80;
        let bytes = self.text.as_bytes();
        let stop = |at: usize| match bytes[at] {
            b'"' | b'\\' => Ok(at),
            _ => Err(Malformed {
                at,
                what: "control character in a string",
            }),
        };
        let mut at = from;
        while let Some(chunk) = bytes.get(at..).and_then(<[u8]>::first_chunk::<8>) {
            let x = u64::from_le_bytes(*chunk);
            let quote = x ^ (ONES * u64::from(b'"'));
            let backslash = x ^ (ONES * u64::from(b'\\'));
            let flagged = (quote.wrapping_sub(ONES) & !quote)
                | (backslash.wrapping_sub(ONES) & !backslash)
                | (x.wrapping_sub(ONES * 0x20) & !x);
            let flagged = flagged & HIGH;
            if flagged != 0 {
                return stop(at + (flagged.trailing_zeros() / 8) as usize);
            }
            at += 8;
        }
        while let Some(&c) = bytes.get(at) {
            if c == b'"' || c == b'\\' || c < 0x20 {
                return stop(at);
            }
            at += 1;
        }
        Err(Malformed {
            at,
            what: "unterminated string",
        })
    }

    /// Reads a string's contents (the reader is past its opening quote), borrowed from the
    /// answer unless it has escapes.
    fn string(&mut self) -> Result<Cow<'a, str>, Malformed> {
        let text = self.text;
        let start = self.at;
        let mut end = self.plain_run(start)?;
        if text.as_bytes()[end] == b'"' {
            self.at = end + 1;
            return Ok(Cow::Borrowed(&text[start..end]));
        }
        let mut out = String::with_capacity(end - start + 16);
        out.push_str(&text[start..end]);
        loop {
            // At a backslash.
            self.at = end + 1;
            let Some(&kind) = text.as_bytes().get(self.at) else {
                return self.fail("unterminated string");
            };
            self.at += 1;
            out.push(match kind {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => self.unicode_escape()?,
                _ => return self.fail("invalid escape"),
            });
            end = self.plain_run(self.at)?;
            out.push_str(&text[self.at..end]);
            if text.as_bytes()[end] == b'"' {
                self.at = end + 1;
                return Ok(Cow::Owned(out));
            }
        }
    }

    /// Four hex digits of a `\u` escape.
    fn hex4(&mut self) -> Result<u32, Malformed> {
        let Some(digits) = self.text.as_bytes().get(self.at..self.at + 4) else {
            return self.fail("invalid \\u escape");
        };
        let mut n = 0;
        for &d in digits {
            let Some(v) = char::from(d).to_digit(16) else {
                return self.fail("invalid \\u escape");
            };
            n = n * 16 + v;
        }
        self.at += 4;
        Ok(n)
    }

    /// The character of a `\u` escape (the reader is past the `u`): a surrogate pair is one
    /// character, a lone surrogate is an error.
    fn unicode_escape(&mut self) -> Result<char, Malformed> {
        let code = match self.hex4()? {
            high @ 0xD800..=0xDBFF => {
                if self.text.as_bytes().get(self.at..self.at + 2) != Some(b"\\u") {
                    return self.fail("lone surrogate in a \\u escape");
                }
                self.at += 2;
                let low = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return self.fail("lone surrogate in a \\u escape");
                }
                0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
            }
            0xDC00..=0xDFFF => return self.fail("lone surrogate in a \\u escape"),
            code => code,
        };
        char::from_u32(code).ok_or_else(|| self.malformed("invalid \\u escape"))
    }

    /// Reads a number: an integer as `u64` or `i64` where it fits, anything else as a finite
    /// `f64` (as serde_json reads them).
    fn number(&mut self) -> Result<Number, Malformed> {
        let start = self.at;
        let integer = self.scan_number()?;
        let text = &self.text[start..self.at];
        if integer {
            if let Ok(n) = text.parse::<u64>() {
                return Ok(n.into());
            }
            // `-0` is a float, as serde_json reads it.
            match text.parse::<i64>() {
                Ok(n) if n != 0 => return Ok(n.into()),
                _ => {}
            }
        }
        text.parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .ok_or(Malformed {
                at: start,
                what: "number out of range",
            })
    }

    /// Checks a number as [`Reader::number`] does and steps over it: an integer of up to 18
    /// digits is always in range, so only longer ones and fractions are converted.
    fn skip_number(&mut self) -> Result<(), Malformed> {
        let start = self.at;
        if self.scan_number()? && self.at - start <= 18 {
            return Ok(());
        }
        self.at = start;
        self.number().map(|_| ())
    }

    /// Steps over a number, checking its form; true when it has no fraction or exponent.
    fn scan_number(&mut self) -> Result<bool, Malformed> {
        let text = self.text;
        let bytes = text.as_bytes();
        if bytes.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        match bytes.get(self.at) {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return self.fail("invalid number"),
        }
        let mut integer = true;
        if bytes.get(self.at) == Some(&b'.') {
            self.at += 1;
            integer = false;
            if !self.digits() {
                return self.fail("invalid number");
            }
        }
        if matches!(bytes.get(self.at), Some(b'e' | b'E')) {
            self.at += 1;
            integer = false;
            if matches!(bytes.get(self.at), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if !self.digits() {
                return self.fail("invalid number");
            }
        }
        Ok(integer)
    }

    /// Steps over decimal digits; true when there was at least one.
    fn digits(&mut self) -> bool {
        let text = self.text;
        let bytes = text.as_bytes();
        let start = self.at;
        while bytes.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
        self.at > start
    }
}

/// Whether `text` starts with `prefix`, compared eight bytes at a time in line: keys are
/// short, and a call to `memcmp` for each costs more than the comparison.
#[inline]
fn same_start(text: &[u8], prefix: &[u8]) -> bool {
    let Some(text) = text.get(..prefix.len()) else {
        return false;
    };
    // Keys are short: up to 16 bytes are two overlapping eight-byte words (or four-byte ones),
    // compared without a loop.
    let word = |b: &[u8], at: usize| {
        b.get(at..at + 8)
            .and_then(|w| w.try_into().ok())
            .map(u64::from_ne_bytes)
    };
    let half = |b: &[u8], at: usize| {
        b.get(at..at + 4)
            .and_then(|w| w.try_into().ok())
            .map(u32::from_ne_bytes)
    };
    match prefix.len() {
        0..4 => text == prefix,
        4..8 => {
            let last = prefix.len() - 4;
            half(text, 0) == half(prefix, 0) && half(text, last) == half(prefix, last)
        }
        8..=16 => {
            let last = prefix.len() - 8;
            word(text, 0) == word(prefix, 0) && word(text, last) == word(prefix, last)
        }
        _ => text == prefix,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Value, Malformed> {
        let mut r = Reader::new(text.as_bytes())?;
        let v = r.value()?;
        r.end()?;
        Ok(v)
    }

    fn skips(text: &str) -> bool {
        let Ok(mut r) = Reader::new(text.as_bytes()) else {
            return false;
        };
        r.skip().and_then(|()| r.end()).is_ok()
    }

    /// The reader must agree with serde_json on what is JSON and what it means, whether it
    /// builds a value or skips it.
    fn agrees(text: &str) {
        let theirs = serde_json::from_str::<Value>(text).ok();
        let ours = read(text).ok();
        assert_eq!(ours, theirs, "value of {text:?}");
        let mut into = Value::Bool(true);
        let built = Reader::new(text.as_bytes())
            .and_then(|mut r| r.value_into(&mut into).and_then(|()| r.end()))
            .is_ok();
        assert_eq!(
            built.then_some(into),
            theirs,
            "value of {text:?}, built in place"
        );
        assert_eq!(skips(text), theirs.is_some(), "skipping {text:?}");
    }

    const VALID: &[&str] = &[
        "null",
        " true ",
        "\tfalse\r\n",
        "0",
        "-0",
        "-1",
        "12.5e3",
        "1E-2",
        "1e-400",
        "0.1",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775808",
        "-9223372036854775809",
        "123456789012345678901234567890",
        r#""a\u00e9\ud83d\ude00\n\"\\\/\b\f\r\t""#,
        "\"é ü 😀\"",
        "[]",
        "{}",
        r#"[1,[2,{"a":[]}],"x",{}]"#,
        r#"{"a":1,"a":2}"#,
        r#"{ "a" : { "b" : [ true , null ] } , "c\u0041" : "" }"#,
        r#"{"login":"acme","id":7,"nested":{"deep":[[[{"x":[1.5,-2e3]}]]]}}"#,
    ];

    const INVALID: &[&str] = &[
        "",
        " ",
        "01",
        "1.",
        ".5",
        "-",
        "1e",
        "1e+",
        "+1",
        "[1,]",
        "{\"a\":1,}",
        "{\"a\"}",
        "{a:1}",
        "\"\\x\"",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\ud800\\u0041\"",
        "\"\\u12\"",
        "\"a\tb\"",
        "\"a\nb\"",
        "[",
        "]",
        "{\"a\":1]",
        "[1}",
        "tru",
        "nul",
        "1 2",
        "\"\"\"\"",
        "\"abc",
        "1e400",
        "-1e400",
        "[1 2]",
        "{\"a\" 1}",
        "{,}",
        "[,1]",
        "nulll",
        "\"\\",
        "\"\\u",
        "{\"a\":}",
        "[-]",
        "[1.e5]",
        "-01",
    ];

    #[test]
    fn agrees_with_serde_json_on_valid_and_invalid_json() {
        for text in VALID {
            assert!(read(text).is_ok(), "{text:?}");
            agrees(text);
        }
        for text in INVALID {
            assert!(read(text).is_err(), "{text:?}");
            agrees(text);
        }
    }

    /// Every one-byte change of the valid documents (deleted, replaced, or one more inserted
    /// from the bytes JSON is made of) is read or refused as serde_json reads or refuses it.
    #[test]
    fn agrees_with_serde_json_on_every_one_byte_change() {
        let alphabet = b"{}[]\",:\\/ 0129-+.eEtrufalsn\tuab";
        let mut checked = 0;
        for text in VALID {
            let bytes = text.as_bytes();
            for at in 0..=bytes.len() {
                let mut variants = Vec::new();
                if at < bytes.len() {
                    let mut v = bytes.to_vec();
                    v.remove(at);
                    variants.push(v);
                }
                for &c in alphabet {
                    let mut v = bytes.to_vec();
                    v.insert(at, c);
                    variants.push(v);
                    if at < bytes.len() {
                        let mut v = bytes.to_vec();
                        v[at] = c;
                        variants.push(v);
                    }
                }
                for v in variants {
                    if let Ok(text) = std::str::from_utf8(&v) {
                        agrees(text);
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 10_000, "only {checked} variants");
    }

    /// Nesting is refused past serde_json's own bound, for values built and skipped alike,
    /// and a hostile depth costs neither a crash nor recursion.
    #[test]
    fn nesting_is_bounded_like_serde_json() {
        for depth in [1, 127, 128, 129, 100_000] {
            let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            let objects = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
            for text in [arrays, objects] {
                if depth < 1000 {
                    agrees(&text);
                } else {
                    assert!(read(&text).is_err() && !skips(&text));
                }
            }
        }
        assert!(read("[[[").is_err() && !skips(&"[".repeat(1_000_000)));
    }

    /// Strings are scanned eight bytes at a time: a quote, a backslash, a control character or
    /// a multi-byte character at every place of a string of every length up to three chunks.
    #[test]
    fn strings_agree_whatever_the_place_of_a_special_byte() {
        for len in 0..25 {
            for at in 0..len {
                for special in [
                    "\"", "\\", "\\n", "\u{1}", "\u{1f}", "\u{7f}", " ", "é", "😀",
                ] {
                    let mut text: String = "x".repeat(len);
                    text.replace_range(at..at + 1, special);
                    agrees(&format!("\"{text}\""));
                    agrees(&format!("[\"{text}\",1]"));
                }
            }
        }
    }

    #[test]
    fn refuses_bytes_that_are_not_utf8() {
        assert!(Reader::new(b"\"\xff\"").is_err());
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let mut r = Reader::new(b"\"plain\"").expect("UTF-8");
        assert_eq!(r.peek(), Some(b'"'));
        r.at += 1;
        assert!(matches!(r.string(), Ok(Cow::Borrowed("plain"))));
    }

    /// Reads a list of objects, each key through `lookup` (remembering keys by place, or
    /// not), and gives back the keys found, object by object.
    fn keys_found(text: &str, remember: bool) -> Result<Vec<Vec<Option<usize>>>, Malformed> {
        const KNOWN: &[&str] = &["name", "na", "name2", "id", "a\"b", "é", ""];
        let lookup = |key: &str| KNOWN.iter().position(|k| *k == key);
        let mut r = Reader::new(text.as_bytes())?;
        let mut memo = Vec::new();
        let mut all = Vec::new();
        r.array(|r| {
            let mut found = Vec::new();
            let member = |r: &mut Reader<'_>, key: Option<usize>| {
                found.push(key);
                r.skip()
            };
            if remember {
                r.object_remembered(&mut memo, lookup, member)?;
            } else {
                let mut member = member;
                r.object(|r, key| member(r, lookup(&key)))?;
            }
            all.push(found);
            Ok(())
        })?;
        r.end()?;
        Ok(all)
    }

    #[test]
    fn same_start_is_starts_with() {
        let text = b"abcdefghijklmnopqrstuvwxyz0123456789";
        for len in 0..=text.len() {
            for cut in 0..=text.len() {
                let mut prefix = text[..len].to_vec();
                assert_eq!(
                    same_start(&text[..cut], &prefix),
                    text[..cut].starts_with(&prefix)
                );
                if let Some(last) = prefix.last_mut() {
                    *last ^= 1;
                    assert_eq!(
                        same_start(&text[..cut], &prefix),
                        text[..cut].starts_with(&prefix)
                    );
                }
                if let Some(first) = prefix.first_mut() {
                    *first ^= 2;
                    assert!(!same_start(&text[..cut], &prefix));
                }
            }
        }
    }

    #[test]
    fn remembered_keys_are_the_keys_read() {
        let lists = [
            r#"[{"name":1,"id":2},{"name":3,"id":4},{"name":5,"id":6}]"#,
            // The same place holding a prefix of the last key, a longer key, another key.
            r#"[{"name":1},{"na":2},{"name2":3},{"name":4},{"nam":5},{"name":6}]"#,
            // Escaped keys (never remembered), and their plain twins.
            r#"[{"a\"b":1,"n\u0061me":2},{"a\"b":3,"name":4},{"a\"b":5,"n\u0061me":6}]"#,
            // Empty keys, non-ASCII keys, whitespace, fewer and more members, empty objects.
            r#"[{"":1,"é":2}, { "" : 3 , "é" : 4 , "id" : 5 },{},{"é":6},{"":{"name":7}}]"#,
            // Keys that end where the text does.
            r#"[{"name":1},{"name"#,
            r#"[{"name":1},{"nam"#,
        ];
        for text in lists {
            assert_eq!(keys_found(text, true), keys_found(text, false), "{text}");
        }
        // And the lookups really were found, not all `None`.
        let found = keys_found(lists[0], true).expect("valid");
        assert_eq!(found[2], vec![Some(0), Some(3)]);
        assert!(keys_found(lists[4], true).is_err());
    }
}
