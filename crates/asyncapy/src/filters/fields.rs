//! [`Fields`]: which keys a payload has, and what their values look like.

use std::fmt;
use std::io::Write as _;

use asyncaproto::{Map, Value};
use regex::Regex;

use super::{Check, Filter};
use crate::packet::Packet;
use crate::session::Client;

/// Passes packets whose payload has the named fields, each field given a
/// pattern matching it (the original's `Filters.Fields(**kwargs)`).
///
/// ```
/// use asyncapy::asyncaproto::Map;
/// use asyncapy::filters::Fields;
///
/// // Python: Filters.Fields(foo=r"\d+", bar=None)
/// let fields = Fields::new().matching("foo", r"\d+")?.field("bar");
/// let same = Fields::from_pairs([("foo", Some(r"\d+")), ("bar", None)])?;
///
/// let ok = Map::from_iter([("foo", "12355"), ("bar", "anything")]);
/// assert!(fields.matches(&ok) && same.matches(&ok));
/// // Integers are matched through their decimal text.
/// assert!(fields.matches(&Map::from_iter([("foo", 12355.into()), ("bar", asyncapy::asyncaproto::Value::Null)])));
/// // The pattern must match the whole value (the original let "12abc" through).
/// assert!(!fields.matches(&Map::from_iter([("foo", "12abc"), ("bar", "x")])));
/// // Strict (the default): no field the filter does not name.
/// assert!(!fields.matches(&Map::from_iter([("foo", "1"), ("bar", "x"), ("baz", "x")])));
/// # Ok::<(), asyncapy::filters::PatternError>(())
/// ```
///
/// # Rules
///
/// * **Presence**: every named field must be in the payload.
/// * **Strict** (the default, as in the original): the payload's fields must be
///   exactly the named ones; a payload with one more field fails.
///   [`Fields::strict`]`(false)` lets other fields through.
/// * **Patterns**: a field given a pattern passes only when the pattern matches
///   the **whole** text of its value: the pattern is compiled as
///   `\A(?:pattern)\z`. This is a deliberate change from the original, which
///   used Python's `re.match` (anchored at the start only), so that `\d+` let
///   `"12abc"` through. To accept a prefix, say so: `\d+.*`.
/// * Patterns use the [`regex`] crate's syntax (Python's, minus look-around
///   and backreferences); matching takes linear time whatever the pattern.
///   Patterns are compiled once, when the filter is built: a bad one is a
///   [`PatternError`] then, never a failure at run time.
///
/// # The text of a value
///
/// Patterns match the value as Python's `str()` writes it, for scalars:
///
/// | value | text | example |
/// |---|---|---|
/// | string | itself | `"12"` → `12` |
/// | integer | decimal | `-7` → `-7` |
/// | float | Python's `repr` (shortest round-trip form) | `1.0` → `1.0`, `1e16` → `1e+16` |
/// | boolean | `True` / `False` | `true` → `True` |
/// | null | `None` | `null` → `None` |
/// | binary (ZiProto `bin`) | its base64 text, as a JSON client receives it | `00 01` → `AAE=` |
/// | array, map | their JSON text, as [`Value`]'s `Display` writes it | `[1, "a"]` → `[1, "a"]` |
///
/// Arrays and maps differ from Python's `str()` (`[1, 'a']`, `{'k': None}`):
/// their JSON form is the one clients write, so it is the one patterns match.
///
/// Strings are matched in place; integers are written on the stack; only
/// floats, binary data, arrays and maps are formatted into a new string.
#[derive(Clone)]
pub struct Fields {
    fields: Vec<Field>,
    strict: bool,
}

#[derive(Clone)]
struct Field {
    name: Box<str>,
    pattern: Option<Pattern>,
}

#[derive(Clone)]
struct Pattern {
    /// As the user wrote it, for messages.
    source: Box<str>,
    /// Anchored at both ends.
    regex: Regex,
}

/// A field's pattern does not compile.
///
/// ```
/// use asyncapy::filters::Fields;
///
/// let err = Fields::new().matching("foo", "([0-9]+").unwrap_err();
/// assert_eq!(err.field(), "foo");
/// assert_eq!(err.pattern(), "([0-9]+");
/// assert!(err.to_string().starts_with(r#"invalid pattern for field "foo": "([0-9]+": "#));
/// ```
#[derive(Debug, thiserror::Error)]
#[error("invalid pattern for field {field:?}: {pattern:?}: {source}")]
pub struct PatternError {
    field: String,
    pattern: String,
    source: regex::Error,
}

impl PatternError {
    /// The field the pattern was given for.
    ///
    /// ```
    /// let err = asyncapy::filters::Fields::new().matching("id", "[").unwrap_err();
    /// assert_eq!(err.field(), "id");
    /// ```
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The pattern, as given.
    ///
    /// ```
    /// let err = asyncapy::filters::Fields::new().matching("id", "[").unwrap_err();
    /// assert_eq!(err.pattern(), "[");
    /// ```
    pub fn pattern(&self) -> &str {
        &self.pattern
    }
}

impl Fields {
    /// A strict filter naming no field yet (as it stands it passes only the
    /// empty payload `{}`).
    ///
    /// ```
    /// use asyncapy::asyncaproto::Map;
    /// let fields = asyncapy::filters::Fields::new();
    /// assert!(fields.matches(&Map::new()));
    /// assert!(!fields.matches(&Map::from_iter([("a", 1)])));
    /// ```
    pub fn new() -> Fields {
        Fields {
            fields: Vec::new(),
            strict: true,
        }
    }

    /// Requires field `name`, with any value (Python's `name=None`). Naming a
    /// field again replaces its earlier rule.
    ///
    /// ```
    /// use asyncapy::asyncaproto::Map;
    /// let fields = asyncapy::filters::Fields::new().field("id");
    /// assert!(fields.matches(&Map::from_iter([("id", "anything")])));
    /// assert!(!fields.matches(&Map::new()));
    /// ```
    pub fn field(self, name: impl Into<String>) -> Fields {
        self.with(name.into(), None)
    }

    /// Requires field `name` with a value whose whole text matches `pattern`
    /// (Python's `name=pattern`, but anchored at both ends). Naming a field
    /// again replaces its earlier rule.
    ///
    /// ```
    /// use asyncapy::asyncaproto::Map;
    /// let fields = asyncapy::filters::Fields::new().matching("n", r"\d+")?;
    /// assert!(fields.matches(&Map::from_iter([("n", 42)])));
    /// assert!(!fields.matches(&Map::from_iter([("n", "42 ")])));
    /// # Ok::<(), asyncapy::filters::PatternError>(())
    /// ```
    pub fn matching(
        self,
        name: impl Into<String>,
        pattern: impl AsRef<str>,
    ) -> Result<Fields, PatternError> {
        let name = name.into();
        let pattern = compile(&name, pattern.as_ref())?;
        Ok(self.with(name, Some(pattern)))
    }

    /// Whether the payload must have only the named fields (`true`, the
    /// default and the original's behaviour) or may have others too.
    ///
    /// ```
    /// use asyncapy::asyncaproto::Map;
    /// let loose = asyncapy::filters::Fields::new().field("id").strict(false);
    /// assert!(loose.matches(&Map::from_iter([("id", 1), ("extra", 2)])));
    /// ```
    pub fn strict(mut self, strict: bool) -> Fields {
        self.strict = strict;
        self
    }

    /// A strict filter from `(name, pattern)` pairs, `None` for "any value":
    /// Python's `Fields(foo=r"\d+", bar=None)`.
    ///
    /// ```
    /// use asyncapy::asyncaproto::Map;
    /// use asyncapy::filters::Fields;
    ///
    /// let fields = Fields::from_pairs([("foo", Some(r"\d+")), ("bar", None)])?;
    /// assert!(fields.matches(&Map::from_iter([("foo", "1"), ("bar", "x")])));
    /// assert!(Fields::from_pairs([("foo", Some("("))]).is_err());
    /// # Ok::<(), asyncapy::filters::PatternError>(())
    /// ```
    pub fn from_pairs<I, N, P>(pairs: I) -> Result<Fields, PatternError>
    where
        I: IntoIterator<Item = (N, Option<P>)>,
        N: Into<String>,
        P: AsRef<str>,
    {
        pairs
            .into_iter()
            .try_fold(Fields::new(), |fields, (name, pattern)| match pattern {
                Some(pattern) => fields.matching(name, pattern),
                None => Ok(fields.field(name)),
            })
    }

    /// Whether `payload` passes: the check the filter makes on every packet.
    ///
    /// ```
    /// use asyncapy::asyncaproto::Map;
    /// let fields = asyncapy::filters::Fields::new().matching("ok", "True|False")?;
    /// assert!(fields.matches(&Map::from_iter([("ok", true)])));
    /// # Ok::<(), asyncapy::filters::PatternError>(())
    /// ```
    pub fn matches(&self, payload: &Map) -> bool {
        if self.strict && payload.len() != self.fields.len() {
            return false;
        }
        // Names are unique, so with equal counts "every name present" means
        // the key sets are equal.
        self.fields
            .iter()
            .all(|field| match payload.get(&field.name) {
                None => false,
                Some(value) => match &field.pattern {
                    None => true,
                    Some(pattern) => with_text(value, |text| pattern.regex.is_match(text)),
                },
            })
    }

    fn with(mut self, name: String, pattern: Option<Pattern>) -> Fields {
        match self.fields.iter_mut().find(|f| *f.name == *name) {
            Some(field) => field.pattern = pattern,
            None => self.fields.push(Field {
                name: name.into_boxed_str(),
                pattern,
            }),
        }
        self
    }
}

impl Default for Fields {
    /// [`Fields::new`].
    fn default() -> Fields {
        Fields::new()
    }
}

impl Filter for Fields {
    fn check(&self, _: &Client, packet: &Packet) -> Check {
        Check::from(self.matches(packet.map()))
    }
}

impl fmt::Debug for Fields {
    /// `Fields(foo=r"\d+", bar=None, strict=true)`, in the spirit of Python's call.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Fields(")?;
        for field in &self.fields {
            match &field.pattern {
                Some(pattern) => write!(f, "{}={:?}, ", field.name, pattern.source)?,
                None => write!(f, "{}=None, ", field.name)?,
            }
        }
        write!(f, "strict={})", self.strict)
    }
}

fn compile(field: &str, pattern: &str) -> Result<Pattern, PatternError> {
    let error = |source| PatternError {
        field: field.to_owned(),
        pattern: pattern.to_owned(),
        source,
    };
    // Compiled alone first so that an error quotes the user's pattern, not
    // the anchored one.
    Regex::new(pattern).map_err(error)?;
    let regex = Regex::new(&format!(r"\A(?:{pattern})\z")).map_err(error)?;
    Ok(Pattern {
        source: pattern.into(),
        regex,
    })
}

/// Calls `f` with the text of `value` (see the table on [`Fields`]).
fn with_text<R>(value: &Value, f: impl FnOnce(&str) -> R) -> R {
    match value {
        Value::Str(s) => f(s),
        Value::Null => f("None"),
        Value::Bool(true) => f("True"),
        Value::Bool(false) => f("False"),
        Value::Int(n) => with_decimal(format_args!("{n}"), f),
        Value::UInt(n) => with_decimal(format_args!("{n}"), f),
        Value::Bin(_) => {
            // Display writes a JSON string: the base64 text between quotes,
            // which base64 never escapes.
            let json = value.to_string();
            f(json.trim_matches('"'))
        }
        Value::Float(_) | Value::Array(_) | Value::Map(_) => f(&value.to_string()),
    }
}

/// Formats an integer on the stack (at most 20 characters) and calls `f` with it.
fn with_decimal<R>(number: fmt::Arguments<'_>, f: impl FnOnce(&str) -> R) -> R {
    let mut buf = [0u8; 24];
    let mut cursor = &mut buf[..];
    let text = match cursor.write_fmt(number) {
        Ok(()) => {
            let written = 24 - cursor.len();
            buf.get(..written)
                .and_then(|digits| std::str::from_utf8(digits).ok())
        }
        Err(_) => None,
    };
    match text {
        Some(text) => f(text),
        // Unreachable for integers up to 64 bits; stay correct regardless.
        None => f(&number.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(value: Value) -> String {
        with_text(&value, str::to_owned)
    }

    fn payload(pairs: &[(&str, Value)]) -> Map {
        pairs.iter().map(|(k, v)| (*k, v.clone())).collect()
    }

    #[test]
    fn text_forms_follow_python_str_for_scalars() {
        assert_eq!(text(Value::from("12")), "12");
        assert_eq!(text(Value::from("")), "");
        assert_eq!(text(Value::from(0)), "0");
        assert_eq!(text(Value::from(-7)), "-7");
        assert_eq!(text(Value::from(i64::MIN)), "-9223372036854775808");
        assert_eq!(text(Value::from(u64::MAX)), "18446744073709551615");
        assert_eq!(text(Value::from(1.0)), "1.0");
        assert_eq!(text(Value::from(0.1)), "0.1");
        assert_eq!(text(Value::from(-2.5)), "-2.5");
        assert_eq!(text(Value::from(1e16)), "1e+16");
        assert_eq!(text(Value::from(1.5e-7)), "1.5e-07");
        assert_eq!(text(Value::from(true)), "True");
        assert_eq!(text(Value::from(false)), "False");
        assert_eq!(text(Value::Null), "None");
        assert_eq!(text(Value::bin(vec![0u8, 1])), "AAE=");
        assert_eq!(text(Value::bin(Vec::<u8>::new())), "");
    }

    #[test]
    fn text_forms_of_arrays_and_maps_are_json() {
        let array = Value::from(vec![Value::from(1), Value::from("a"), Value::Null]);
        assert_eq!(text(array), r#"[1, "a", null]"#);
        let map = Value::from(payload(&[("k", Value::from(true))]));
        assert_eq!(text(map), r#"{"k": true}"#);
    }

    #[test]
    fn strict_needs_exactly_the_named_fields() {
        let fields = Fields::new().field("a").field("b");
        assert!(fields.matches(&payload(&[("a", 1.into()), ("b", 2.into())])));
        assert!(fields.matches(&payload(&[("b", 2.into()), ("a", 1.into())])));
        assert!(!fields.matches(&payload(&[("a", 1.into())])));
        assert!(!fields.matches(&payload(&[
            ("a", 1.into()),
            ("b", 2.into()),
            ("c", 3.into())
        ])));
        assert!(!fields.matches(&payload(&[("a", 1.into()), ("c", 3.into())])));
        assert!(!fields.matches(&Map::new()));
    }

    #[test]
    fn non_strict_needs_the_named_fields_and_allows_others() {
        let fields = Fields::new().field("a").strict(false);
        assert!(fields.matches(&payload(&[("a", 1.into())])));
        assert!(fields.matches(&payload(&[("a", 1.into()), ("z", 1.into())])));
        assert!(!fields.matches(&payload(&[("z", 1.into())])));
        let none = Fields::new().strict(false);
        assert!(none.matches(&Map::new()));
        assert!(none.matches(&payload(&[("z", 1.into())])));
    }

    #[test]
    fn patterns_match_the_whole_value() {
        let fields = Fields::new().matching("foo", r"\d+").unwrap();
        let foo = |v: Value| payload(&[("foo", v)]);
        assert!(fields.matches(&foo("12".into())));
        assert!(fields.matches(&foo(12355.into())));
        // The prefix hole of Python's re.match (PROTOCOL.md §4).
        assert!(!fields.matches(&foo("12abc".into())));
        assert!(!fields.matches(&foo("abc12".into())));
        assert!(!fields.matches(&foo("12\n".into())));
        assert!(!fields.matches(&foo("".into())));
        assert!(!fields.matches(&foo((-12).into())));
        assert!(!fields.matches(&foo(1.0.into())));
        assert!(!fields.matches(&foo(Value::Null)));
    }

    #[test]
    fn alternations_and_flags_stay_inside_the_anchors() {
        let fields = Fields::new().matching("x", "a|b").unwrap();
        assert!(fields.matches(&payload(&[("x", "a".into())])));
        assert!(!fields.matches(&payload(&[("x", "ab".into())])));
        assert!(!fields.matches(&payload(&[("x", "xb".into())])));
        // (?m) inside the group cannot make the outer anchors line-anchored.
        let multi = Fields::new().matching("x", "(?m)a$").unwrap();
        assert!(!multi.matches(&payload(&[("x", "a\nb".into())])));
        assert!(multi.matches(&payload(&[("x", "a".into())])));
        let ci = Fields::new().matching("x", "(?i)true").unwrap();
        assert!(ci.matches(&payload(&[("x", true.into())])));
    }

    #[test]
    fn patterns_on_non_string_values() {
        let check = |pattern: &str, value: Value| {
            Fields::new()
                .matching("v", pattern)
                .unwrap()
                .matches(&payload(&[("v", value)]))
        };
        assert!(check("None", Value::Null));
        assert!(check("True", true.into()));
        assert!(!check("true", true.into()));
        assert!(check(r"-?\d+\.\d+", 2.5.into()));
        assert!(check(r"\[.*\]", Value::from(vec![1, 2])));
        assert!(check(r"\d+", u64::MAX.into()));
    }

    #[test]
    fn bad_patterns_name_the_field_and_pattern() {
        let err = Fields::new().matching("foo", "a(b").unwrap_err();
        assert_eq!(err.field(), "foo");
        assert_eq!(err.pattern(), "a(b");
        let message = err.to_string();
        assert!(message.contains(r#""foo""#), "{message}");
        assert!(message.contains(r#""a(b""#), "{message}");
        assert!(
            !message.contains(r"\A"),
            "quotes the user's pattern: {message}"
        );
        // Look-around is not supported by the regex crate.
        assert!(Fields::new().matching("x", "(?=a)").is_err());
        let err = Fields::from_pairs([("ok", None), ("bad", Some("*"))]).unwrap_err();
        assert_eq!(err.field(), "bad");
    }

    #[test]
    fn naming_a_field_twice_keeps_the_last_rule() {
        let fields = Fields::new()
            .matching("a", r"\d")
            .unwrap()
            .field("a")
            .field("b")
            .matching("b", "x")
            .unwrap();
        assert!(fields.matches(&payload(&[("a", "any".into()), ("b", "x".into())])));
        assert!(!fields.matches(&payload(&[("a", "any".into()), ("b", "y".into())])));
        assert_eq!(
            format!("{fields:?}"),
            r#"Fields(a=None, b="x", strict=true)"#
        );
    }

    #[test]
    fn from_pairs_matches_the_builder() {
        let pairs = Fields::from_pairs([("foo", Some(r"\d+")), ("bar", None)]).unwrap();
        let built = Fields::new().matching("foo", r"\d+").unwrap().field("bar");
        assert_eq!(format!("{pairs:?}"), format!("{built:?}"));
        let strings =
            Fields::from_pairs(vec![(String::from("a"), Some(String::from("b")))]).unwrap();
        assert!(strings.matches(&payload(&[("a", "b".into())])));
    }
}
