//! The filters of a Python route: the built-in ones checked in Rust (`Fields` with
//! `re.match` semantics, `Ip`, `APIFactory` over a key set or store), and a
//! `Filter` subclass, checked on the trio thread.

use super::*;

/// A filter checked in Python, at its turn, on the trio thread.
pub(crate) struct PythonFilter {
    pub(crate) shared: Arc<Shared>,
    pub(crate) filter: usize,
}

impl Filter for PythonFilter {
    fn check(&self, client: &Client, packet: &Packet) -> Check {
        let shared = self.shared.clone();
        let filter = self.filter;
        let client = client.clone();
        let packet = packet.clone();
        Check::later(async move {
            let outcome = shared
                .call(client, |id, client| Event::Filter {
                    id,
                    filter,
                    client,
                    packet,
                })
                .await;
            outcome == Some(Outcome::Pass)
        })
    }
}

/// `Filters.Fields` checked in Rust with the original's semantics: the
/// payload's keys are exactly the named ones, and each pattern matches a
/// *prefix* of the value's Python `str()` (`re.match`). A value whose
/// `str()` Rust does not render (a float, a list, a dict) is left to the
/// same filter in Python.
pub(crate) struct PrefixFields {
    pub(crate) fields: Vec<(String, Option<regex::Regex>)>,
    pub(crate) fallback: PythonFilter,
}

/// Python's `str()` of a scalar value, when it is simple to render exactly.
pub(crate) fn python_str(value: &Value) -> Option<String> {
    Some(match value {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Null => "None".to_owned(),
        _ => return None,
    })
}

impl Filter for PrefixFields {
    fn check(&self, client: &Client, packet: &Packet) -> Check {
        let map = packet.map();
        if map.len() != self.fields.len() {
            return Check::Fail;
        }
        for (name, pattern) in &self.fields {
            let Some(value) = map.get(name) else {
                return Check::Fail;
            };
            if let Some(pattern) = pattern {
                match python_str(value) {
                    Some(text) => {
                        if !pattern.is_match(&text) {
                            return Check::Fail;
                        }
                    }
                    None => return self.fallback.check(client, packet),
                }
            }
        }
        Check::Pass
    }
}

/// `Filters.APIFactory` over a key set mirrored from Python: the packet's
/// field is a string that is a key.
pub(crate) struct KeyFilter {
    pub(crate) keys: Arc<RwLock<HashSet<String>>>,
    pub(crate) field: String,
}

impl Filter for KeyFilter {
    fn check(&self, _client: &Client, packet: &Packet) -> Check {
        match packet.get(&self.field) {
            Some(Value::Str(key)) => Check::from(
                self.keys
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .contains(key),
            ),
            _ => Check::Fail,
        }
    }
}

/// One filter of a route, as the Python package describes it.
pub(crate) enum FilterSpec {
    /// `("fields", [(name, pattern or None)], fallback filter id)`
    Fields(Vec<(String, Option<String>)>, usize),
    /// `("ip", IpSet)`
    Ip(Py<IpSet>),
    /// `("keys", KeySet, field name)`
    Keys(Py<KeySet>, String),
    /// `("python", filter id)`
    Python(usize),
    /// `("store", StoreKeys, field name)`
    Store(Py<StoreKeys>, String),
}

impl<'a, 'py> FromPyObject<'a, 'py> for FilterSpec {
    type Error = PyErr;

    fn extract(obj: pyo3::Borrowed<'a, 'py, PyAny>) -> PyResult<FilterSpec> {
        let tuple = obj.cast::<PyTuple>()?;
        let tag: String = tuple.get_item(0)?.extract()?;
        Ok(match tag.as_str() {
            "fields" => {
                FilterSpec::Fields(tuple.get_item(1)?.extract()?, tuple.get_item(2)?.extract()?)
            }
            "ip" => FilterSpec::Ip(tuple.get_item(1)?.extract()?),
            "keys" => {
                FilterSpec::Keys(tuple.get_item(1)?.extract()?, tuple.get_item(2)?.extract()?)
            }
            "python" => FilterSpec::Python(tuple.get_item(1)?.extract()?),
            "store" => {
                FilterSpec::Store(tuple.get_item(1)?.extract()?, tuple.get_item(2)?.extract()?)
            }
            _ => return Err(PyValueError::new_err("unknown filter kind")),
        })
    }
}
