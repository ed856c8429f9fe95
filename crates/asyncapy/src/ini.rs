//! A reader for INI files with the semantics of Python's `configparser`
//! (the parser the original AsyncAPY used), so existing `config.ini` files load
//! unchanged.
//!
//! What it follows from `configparser.ConfigParser()` with default arguments:
//! `[section]` headers (case-sensitive); `key = value` or `key: value` with keys
//! folded to lower case and both sides trimmed; whole-line comments starting with
//! `#` or `;`; indented lines continuing the previous value (joined with `\n`);
//! a `[DEFAULT]` section whose keys every section inherits; duplicate sections or
//! keys are errors; and *basic interpolation* on lookup: `%%` is a literal `%`
//! and `%(name)s` is replaced by the value of `name` in the same section.
//! Unlike Python, one lookup expands at most [`MAX_INTERPOLATED_REFS`]
//! references into at most [`MAX_INTERPOLATED_LEN`] bytes: a few lines that
//! reference each other many times over would otherwise take exponential time
//! and memory.
//!
//! ```
//! use asyncapy::ini::Ini;
//!
//! let ini = Ini::parse("[AsyncAPY]\nport = 1500\nformat = %%(message)s at %(port)s\n")?;
//! assert_eq!(ini.get("AsyncAPY", "PORT")?.as_deref(), Some("1500"));
//! assert_eq!(ini.get("AsyncAPY", "format")?.as_deref(), Some("%(message)s at 1500"));
//! assert_eq!(ini.get("AsyncAPY", "missing")?, None);
//! # Ok::<(), asyncapy::ini::IniError>(())
//! ```

use std::collections::HashMap;

/// How deep `%(name)s` references may nest before the lookup is refused
/// (Python's `MAX_INTERPOLATION_DEPTH`).
const MAX_INTERPOLATION_DEPTH: usize = 10;

/// The most `%(name)s` references one lookup may expand, however nested.
pub const MAX_INTERPOLATED_REFS: usize = 256;

/// The longest value, in bytes, one lookup may produce.
pub const MAX_INTERPOLATED_LEN: usize = 64 * 1024;

/// The name of the section every other section inherits from.
const DEFAULT_SECTION: &str = "DEFAULT";

/// A parsed INI document.
#[derive(Debug, Clone, Default)]
pub struct Ini {
    sections: Vec<(String, Section)>,
    defaults: Section,
}

#[derive(Debug, Clone, Default)]
struct Section {
    /// Keys in file order, lower-cased, with their raw (uninterpolated) values.
    entries: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl Section {
    fn get(&self, key: &str) -> Option<&str> {
        self.index.get(key).map(|&i| self.entries[i].1.as_str())
    }
}

/// A syntax or interpolation error, with the line it was found on where it has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IniError {
    /// A key/value line before any `[section]` header.
    #[error("line {line}: a key outside of any [section]")]
    MissingSectionHeader {
        /// 1-based line number.
        line: usize,
    },
    /// A `[section` header without its closing bracket, or an empty name.
    #[error("line {line}: malformed section header")]
    BadSectionHeader {
        /// 1-based line number.
        line: usize,
    },
    /// A line that is neither a header, a comment, nor `key = value`.
    #[error("line {line}: expected 'key = value'")]
    BadLine {
        /// 1-based line number.
        line: usize,
    },
    /// The same section twice.
    #[error("line {line}: section [{section}] appears twice")]
    DuplicateSection {
        /// 1-based line number of the second occurrence.
        line: usize,
        /// The section's name.
        section: String,
    },
    /// The same key twice in one section.
    #[error("line {line}: key '{key}' appears twice in [{section}]")]
    DuplicateKey {
        /// 1-based line number of the second occurrence.
        line: usize,
        /// The section's name.
        section: String,
        /// The key.
        key: String,
    },
    /// A `%` not followed by `%` or `(name)s`.
    #[error(
        "[{section}] {key}: '%' must be followed by '%' or '(name)s' (write %% for a literal %)"
    )]
    BadInterpolation {
        /// The section's name.
        section: String,
        /// The key whose value is malformed.
        key: String,
    },
    /// `%(name)s` names a key that does not exist.
    #[error("[{section}] {key}: %({missing})s refers to a key that does not exist")]
    MissingReference {
        /// The section's name.
        section: String,
        /// The key whose value holds the reference.
        key: String,
        /// The key it refers to.
        missing: String,
    },
    /// References nested too deeply (or in a cycle).
    #[error("[{section}] {key}: %(name)s references nest too deeply")]
    InterpolationDepth {
        /// The section's name.
        section: String,
        /// The key being looked up.
        key: String,
    },
    /// Interpolation expands too many references or into too long a value
    /// (see [`MAX_INTERPOLATED_REFS`] and [`MAX_INTERPOLATED_LEN`]).
    #[error(
        "[{section}] {key}: %(name)s references expand to more than {MAX_INTERPOLATED_REFS} references or {MAX_INTERPOLATED_LEN} bytes"
    )]
    InterpolationTooLarge {
        /// The section's name.
        section: String,
        /// The key being looked up.
        key: String,
    },
}

impl Ini {
    /// Parses an INI document.
    pub fn parse(text: &str) -> Result<Ini, IniError> {
        let mut ini = Ini::default();
        // Which section receives keys: None before any header, Some(None) for
        // DEFAULT, Some(Some(i)) for sections[i].
        let mut current: Option<Option<usize>> = None;
        // The key that an indented line would continue, with its indent.
        let mut last_key: Option<(String, usize)> = None;

        for (n, raw) in text.lines().enumerate() {
            let line = n + 1;
            let trimmed = raw.trim();
            let indent = raw.len() - raw.trim_start().len();
            if trimmed.is_empty() {
                // Python keeps empty lines inside a multi-line value only if more
                // continuation follows; trailing blanks are stripped. We end the
                // value here, which gives the same result for every file whose
                // values do not hold blank lines.
                last_key = None;
                continue;
            }
            if trimmed.starts_with('#') || trimmed.starts_with(';') {
                continue;
            }
            if let (Some((key, key_indent)), Some(target)) = (&last_key, current) {
                if indent > *key_indent {
                    let section = ini.section_mut(target);
                    if let Some(&i) = section.index.get(key) {
                        let value = &mut section.entries[i].1;
                        value.push('\n');
                        value.push_str(trimmed);
                    }
                    continue;
                }
            }
            if trimmed.starts_with('[') {
                let name = trimmed
                    .strip_prefix('[')
                    .and_then(|rest| rest.split_once(']'))
                    .map(|(name, _)| name)
                    .filter(|name| !name.is_empty())
                    .ok_or(IniError::BadSectionHeader { line })?;
                last_key = None;
                if name == DEFAULT_SECTION {
                    current = Some(None);
                    continue;
                }
                if ini.sections.iter().any(|(s, _)| s == name) {
                    return Err(IniError::DuplicateSection {
                        line,
                        section: name.to_owned(),
                    });
                }
                ini.sections.push((name.to_owned(), Section::default()));
                current = Some(Some(ini.sections.len() - 1));
                continue;
            }
            let Some(target) = current else {
                return Err(IniError::MissingSectionHeader { line });
            };
            let split = trimmed.find(['=', ':']).ok_or(IniError::BadLine { line })?;
            let key = trimmed[..split].trim().to_lowercase();
            let value = trimmed[split + 1..].trim().to_owned();
            if key.is_empty() {
                return Err(IniError::BadLine { line });
            }
            let section_name = match target {
                None => DEFAULT_SECTION.to_owned(),
                Some(i) => ini.sections[i].0.clone(),
            };
            let section = ini.section_mut(target);
            if section.index.contains_key(&key) {
                return Err(IniError::DuplicateKey {
                    line,
                    section: section_name,
                    key,
                });
            }
            section.index.insert(key.clone(), section.entries.len());
            section.entries.push((key.clone(), value));
            last_key = Some((key, indent));
        }
        Ok(ini)
    }

    fn section_mut(&mut self, target: Option<usize>) -> &mut Section {
        match target {
            None => &mut self.defaults,
            Some(i) => &mut self.sections[i].1,
        }
    }

    fn section(&self, name: &str) -> Option<&Section> {
        if name == DEFAULT_SECTION {
            return Some(&self.defaults);
        }
        self.sections
            .iter()
            .find(|(s, _)| s == name)
            .map(|(_, section)| section)
    }

    /// Whether the document has a section of that name (`DEFAULT` always exists).
    pub fn has_section(&self, name: &str) -> bool {
        self.section(name).is_some()
    }

    /// The section names, in file order (without `DEFAULT`).
    pub fn sections(&self) -> impl Iterator<Item = &str> {
        self.sections.iter().map(|(s, _)| s.as_str())
    }

    /// The keys of `section` (its own, then inherited ones from `DEFAULT`), lower-cased.
    pub fn keys(&self, section: &str) -> Vec<&str> {
        let mut keys: Vec<&str> = Vec::new();
        if let Some(s) = self.section(section) {
            keys.extend(s.entries.iter().map(|(k, _)| k.as_str()));
        }
        for (k, _) in &self.defaults.entries {
            if !keys.contains(&k.as_str()) {
                keys.push(k);
            }
        }
        keys
    }

    /// The value of `key` (case-insensitive) in `section`, falling back to
    /// `DEFAULT`, with interpolation applied. `Ok(None)` when absent.
    pub fn get(&self, section: &str, key: &str) -> Result<Option<String>, IniError> {
        let key = key.to_lowercase();
        match self.raw(section, &key) {
            None => Ok(None),
            Some(raw) => {
                let mut out = String::with_capacity(raw.len());
                let mut refs = 0;
                self.interpolate(section, &key, raw, 1, &mut out, &mut refs)?;
                Ok(Some(out))
            }
        }
    }

    fn raw(&self, section: &str, key: &str) -> Option<&str> {
        self.section(section)
            .and_then(|s| s.get(key))
            .or_else(|| self.defaults.get(key))
    }

    /// Appends `raw`, interpolated, to `out`; `refs` counts the references
    /// expanded so far in this lookup.
    fn interpolate(
        &self,
        section: &str,
        key: &str,
        raw: &str,
        depth: usize,
        out: &mut String,
        refs: &mut usize,
    ) -> Result<(), IniError> {
        if depth > MAX_INTERPOLATION_DEPTH {
            return Err(IniError::InterpolationDepth {
                section: section.to_owned(),
                key: key.to_owned(),
            });
        }
        let bad = || IniError::BadInterpolation {
            section: section.to_owned(),
            key: key.to_owned(),
        };
        let too_large = || IniError::InterpolationTooLarge {
            section: section.to_owned(),
            key: key.to_owned(),
        };
        let mut rest = raw;
        while let Some(pos) = rest.find('%') {
            out.push_str(&rest[..pos]);
            rest = &rest[pos + 1..];
            if let Some(after) = rest.strip_prefix('%') {
                out.push('%');
                rest = after;
            } else if let Some(after) = rest.strip_prefix('(') {
                let (name, after) = after.split_once(")s").ok_or_else(bad)?;
                *refs += 1;
                if *refs > MAX_INTERPOLATED_REFS {
                    return Err(too_large());
                }
                let name = name.to_lowercase();
                let value = self
                    .raw(section, &name)
                    .ok_or_else(|| IniError::MissingReference {
                        section: section.to_owned(),
                        key: key.to_owned(),
                        missing: name.clone(),
                    })?;
                self.interpolate(section, key, value, depth + 1, out, refs)?;
                rest = after;
            } else {
                return Err(bad());
            }
            if out.len() > MAX_INTERPOLATED_LEN {
                return Err(too_large());
            }
        }
        out.push_str(rest);
        if out.len() > MAX_INTERPOLATED_LEN {
            return Err(too_large());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_original_sample_config_loads() {
        let text = "# AsyncAPY sample\n\n[AsyncAPY]\naddr = 127.0.0.1\nport = 1500\nencoding = json\nheader_size = 4\nbyteorder = big\nbuf = 1024\nlogging_level = 10\ntimeout = 15\n";
        let ini = Ini::parse(text).expect("parses");
        assert_eq!(ini.sections().collect::<Vec<_>>(), ["AsyncAPY"]);
        assert_eq!(
            ini.get("AsyncAPY", "timeout").unwrap().as_deref(),
            Some("15")
        );
        assert_eq!(ini.keys("AsyncAPY").len(), 8);
    }

    #[test]
    fn colon_delimiter_comments_and_case() {
        let ini = Ini::parse("[s]\n; c\n  # c\nKey: v = w\n").expect("parses");
        assert_eq!(ini.get("s", "key").unwrap().as_deref(), Some("v = w"));
        assert_eq!(
            ini.get("S", "key").unwrap(),
            None,
            "section names are case-sensitive"
        );
    }

    #[test]
    fn continuation_lines_join_with_newlines() {
        let ini = Ini::parse("[s]\nk = a\n  b\n\tc\nj = d\n").expect("parses");
        assert_eq!(ini.get("s", "k").unwrap().as_deref(), Some("a\nb\nc"));
        assert_eq!(ini.get("s", "j").unwrap().as_deref(), Some("d"));
    }

    #[test]
    fn defaults_are_inherited_and_interpolated() {
        let ini = Ini::parse("[DEFAULT]\nhost = h\n[s]\nurl = %(host)s:1\n").expect("parses");
        assert_eq!(ini.get("s", "url").unwrap().as_deref(), Some("h:1"));
        assert_eq!(ini.get("s", "host").unwrap().as_deref(), Some("h"));
    }

    #[test]
    fn python_style_format_strings_need_doubled_percent() {
        let ini = Ini::parse("[s]\nok = [%%(levelname)s]\nbad = [%(levelname)s]\nlone = 50%\n")
            .expect("parses");
        assert_eq!(
            ini.get("s", "ok").unwrap().as_deref(),
            Some("[%(levelname)s]")
        );
        assert!(matches!(
            ini.get("s", "bad"),
            Err(IniError::MissingReference { missing, .. }) if missing == "levelname"
        ));
        assert!(matches!(
            ini.get("s", "lone"),
            Err(IniError::BadInterpolation { .. })
        ));
    }

    #[test]
    fn reference_cycles_are_refused() {
        let ini = Ini::parse("[s]\na = %(b)s\nb = %(a)s\n").expect("parses");
        assert!(matches!(
            ini.get("s", "a"),
            Err(IniError::InterpolationDepth { .. })
        ));
    }

    #[test]
    fn syntax_errors_name_the_line() {
        assert_eq!(
            Ini::parse("k = v\n").unwrap_err(),
            IniError::MissingSectionHeader { line: 1 }
        );
        assert_eq!(
            Ini::parse("[s]\njunk\n").unwrap_err(),
            IniError::BadLine { line: 2 }
        );
        assert_eq!(
            Ini::parse("[s\n").unwrap_err(),
            IniError::BadSectionHeader { line: 1 }
        );
        assert!(matches!(
            Ini::parse("[s]\n[s]\n").unwrap_err(),
            IniError::DuplicateSection { line: 2, .. }
        ));
        assert!(matches!(
            Ini::parse("[s]\nk=1\nK=2\n").unwrap_err(),
            IniError::DuplicateKey { line: 3, .. }
        ));
    }
}
