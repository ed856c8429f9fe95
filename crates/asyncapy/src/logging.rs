//! Log lines in the original's format: Python `logging` format strings
//! (`console_format`) and strftime dates (`datefmt`), at a Python level number.
//!
//! The server logs with [`tracing`]; [`PythonFormat`] renders its events the way
//! the original AsyncAPY's `logging.basicConfig(format=..., datefmt=...)` did,
//! so an existing configuration gives the same lines:
//!
//! ```text
//! [INFO] 10/02/2020 16:39:35 PM (7fd5fab0-5393-44ec-a75d-fa4f2c7e4562) New session started ...
//! ```
//!
//! Every line logged inside a session carries the session id in parentheses
//! at the start of its message. Supported attributes: `asctime`, `created`,
//! `filename`, `funcName` (always `?`), `levelname`, `levelno`, `lineno`,
//! `message`, `module`, `msecs`, `name`, `pathname`, `process`, `processName`,
//! `relativeCreated`, `thread`, `threadName`; with Python's flags, width and
//! precision (`%(levelname)-8s`, `%(created).3f`; at most [`MAX_FIELD_WIDTH`]),
//! and `%%`.
//!
//! ```
//! use asyncapy::logging::PythonFormat;
//!
//! let format = PythonFormat::new("[%(levelname)s] %(asctime)s %(message)s", "%d/%m/%Y %H:%M:%S %p")?;
//! assert!(PythonFormat::new("%(nosuch)s", "%H").is_err());
//! assert!(PythonFormat::new("%(message)s", "%Q").is_err());
//! # Ok::<(), asyncapy::logging::FormatError>(())
//! ```

use std::fmt::{self, Write as _};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Local};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// A Python `logging` level, kept as its number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogLevel(pub u8);

impl LogLevel {
    /// `DEBUG` (10).
    pub const DEBUG: LogLevel = LogLevel(10);
    /// `INFO` (20).
    pub const INFO: LogLevel = LogLevel(20);
    /// `WARNING` (30).
    pub const WARNING: LogLevel = LogLevel(30);
    /// `ERROR` (40).
    pub const ERROR: LogLevel = LogLevel(40);
    /// `CRITICAL` (50).
    pub const CRITICAL: LogLevel = LogLevel(50);

    /// Parses a number (`10`) or a name (`DEBUG`, `info`, `WARN`...).
    pub fn parse(text: &str) -> Option<LogLevel> {
        let text = text.trim();
        if let Ok(n) = text.parse::<u8>() {
            return Some(LogLevel(n));
        }
        match text.to_ascii_uppercase().as_str() {
            "NOTSET" => Some(LogLevel(0)),
            "DEBUG" => Some(LogLevel::DEBUG),
            "INFO" => Some(LogLevel::INFO),
            "WARN" | "WARNING" => Some(LogLevel::WARNING),
            "ERROR" => Some(LogLevel::ERROR),
            "FATAL" | "CRITICAL" => Some(LogLevel::CRITICAL),
            _ => None,
        }
    }

    /// The Python name of the level a record of this number is shown as.
    pub fn name(self) -> &'static str {
        match self.0 {
            0..=10 => "DEBUG",
            11..=20 => "INFO",
            21..=30 => "WARNING",
            31..=40 => "ERROR",
            _ => "CRITICAL",
        }
    }
}

/// A format string or date format that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// `%(name)` names an attribute we do not have.
    #[error("unknown attribute %({0})")]
    UnknownAttribute(String),
    /// A `%` that does not start `%%` or `%(name)...`.
    #[error("malformed directive at byte {0} (write %% for a literal %)")]
    Malformed(usize),
    /// A width or precision over [`MAX_FIELD_WIDTH`] (a line padded to
    /// billions of characters would stall every log call).
    #[error("width or precision over {max} at byte {0}", max = MAX_FIELD_WIDTH)]
    FieldTooWide(usize),
    /// A strftime directive chrono does not know.
    #[error("invalid strftime format {0:?}")]
    DateFormat(String),
}

/// The largest width or precision a `console_format` field may ask for.
pub const MAX_FIELD_WIDTH: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attr {
    AscTime,
    Created,
    FileName,
    FuncName,
    LevelName,
    LevelNo,
    LineNo,
    Message,
    Module,
    Msecs,
    Name,
    PathName,
    Process,
    ProcessName,
    RelativeCreated,
    Thread,
    ThreadName,
}

impl Attr {
    fn parse(name: &str) -> Option<Attr> {
        Some(match name {
            "asctime" => Attr::AscTime,
            "created" => Attr::Created,
            "filename" => Attr::FileName,
            "funcName" => Attr::FuncName,
            "levelname" => Attr::LevelName,
            "levelno" => Attr::LevelNo,
            "lineno" => Attr::LineNo,
            "message" => Attr::Message,
            "module" => Attr::Module,
            "msecs" => Attr::Msecs,
            "name" => Attr::Name,
            "pathname" => Attr::PathName,
            "process" => Attr::Process,
            "processName" => Attr::ProcessName,
            "relativeCreated" => Attr::RelativeCreated,
            "thread" => Attr::Thread,
            "threadName" => Attr::ThreadName,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
enum Piece {
    Literal(String),
    Field {
        attr: Attr,
        left: bool,
        zero: bool,
        width: usize,
        precision: Option<usize>,
        conversion: char,
    },
}

/// Renders `tracing` events as Python `logging` would with a format string
/// and a date format. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct PythonFormat {
    pieces: Vec<Piece>,
    /// `datefmt`, parsed once.
    datefmt: Vec<Item<'static>>,
    /// Whether a piece is `%(asctime)`: the date is rendered once per line.
    uses_asctime: bool,
    started: Instant,
}

impl PythonFormat {
    /// Parses `format` (Python `%`-style) and checks `datefmt` (strftime).
    pub fn new(format: &str, datefmt: &str) -> Result<PythonFormat, FormatError> {
        let date_items = StrftimeItems::new(datefmt)
            .parse_to_owned()
            .map_err(|_| FormatError::DateFormat(datefmt.to_owned()))?;
        let pieces = parse_format(format)?;
        let uses_asctime = pieces.iter().any(|piece| {
            matches!(
                piece,
                Piece::Field {
                    attr: Attr::AscTime,
                    ..
                }
            )
        });
        Ok(PythonFormat {
            pieces,
            datefmt: date_items,
            uses_asctime,
            started: Instant::now(),
        })
    }
}

fn parse_format(format: &str) -> Result<Vec<Piece>, FormatError> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let bytes = format.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let Some(offset) = format[i..].find('%') else {
            literal.push_str(&format[i..]);
            break;
        };
        literal.push_str(&format[i..i + offset]);
        let start = i + offset;
        match bytes.get(start + 1) {
            Some(b'%') => {
                literal.push('%');
                i = start + 2;
            }
            Some(b'(') => {
                let close = format[start..]
                    .find(')')
                    .map(|c| start + c)
                    .ok_or(FormatError::Malformed(start))?;
                let name = &format[start + 2..close];
                let attr = Attr::parse(name)
                    .ok_or_else(|| FormatError::UnknownAttribute(name.to_owned()))?;
                let mut j = close + 1;
                let (mut left, mut zero) = (false, false);
                while let Some(&flag) = bytes.get(j) {
                    match flag {
                        b'-' => left = true,
                        b'0' => zero = true,
                        b' ' | b'+' | b'#' => {}
                        _ => break,
                    }
                    j += 1;
                }
                let digits_end = j + bytes[j..].iter().take_while(|b| b.is_ascii_digit()).count();
                let width = field_width(&format[j..digits_end], start)?;
                j = digits_end;
                let mut precision = None;
                if bytes.get(j) == Some(&b'.') {
                    let p_end = j
                        + 1
                        + bytes[j + 1..]
                            .iter()
                            .take_while(|b| b.is_ascii_digit())
                            .count();
                    precision = Some(field_width(&format[j + 1..p_end], start)?);
                    j = p_end;
                }
                let conversion = match bytes.get(j) {
                    Some(&c) if b"sdifrgeExXa".contains(&c) => char::from(c),
                    _ => return Err(FormatError::Malformed(start)),
                };
                if !literal.is_empty() {
                    pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                }
                pieces.push(Piece::Field {
                    attr,
                    left,
                    zero,
                    width,
                    precision,
                    conversion,
                });
                i = j + 1;
            }
            _ => return Err(FormatError::Malformed(start)),
        }
    }
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    Ok(pieces)
}

/// A field's width or precision: digits (none means 0), at most
/// [`MAX_FIELD_WIDTH`]; `start` is where the field's `%` is, for the error.
fn field_width(digits: &str, start: usize) -> Result<usize, FormatError> {
    if digits.is_empty() {
        return Ok(0);
    }
    digits
        .parse()
        .ok()
        .filter(|&n| n <= MAX_FIELD_WIDTH)
        .ok_or(FormatError::FieldTooWide(start))
}

/// The Python level name of a tracing level (TRACE shows as DEBUG).
fn level_name(level: &Level) -> (&'static str, u8) {
    match *level {
        Level::ERROR => ("ERROR", 40),
        Level::WARN => ("WARNING", 30),
        Level::INFO => ("INFO", 20),
        _ => ("DEBUG", 10),
    }
}

/// Collects an event's message and its other fields as ` key=value`.
#[derive(Default)]
struct MessageVisitor {
    message: String,
    extra: String,
}

impl Visit for MessageVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.extra, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.extra, " {}={value:?}", field.name());
        }
    }
}

impl<S, N> FormatEvent<S, N> for PythonFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let now = SystemTime::now();
        let mut visitor = MessageVisitor::default();
        event.record(&mut visitor);
        // The session id, from the innermost "session" span around the event.
        let mut message = String::with_capacity(visitor.message.len() + 40);
        if let Some(scope) = ctx.event_scope() {
            for span in scope {
                if span.name() == "session" {
                    if let Some(fields) = span.extensions().get::<FormattedFields<N>>() {
                        let first = fields.fields.split(' ').next().unwrap_or_default();
                        let id = first.trim_start_matches("id=").trim_matches('"');
                        let _ = write!(message, "({id}) ");
                    }
                    break;
                }
            }
        }
        message.push_str(&visitor.message);
        message.push_str(&visitor.extra);

        let (levelname, levelno) = level_name(meta.level());
        let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        // Like Python's `Formatter`, the date is rendered once per record,
        // however many times the format shows it.
        let mut asctime = String::new();
        if self.uses_asctime {
            let local: DateTime<Local> = now.into();
            let _ = write!(asctime, "{}", local.format_with_items(self.datefmt.iter()));
        }
        // One scratch buffer for the fields that need formatting first.
        let mut scratch = String::new();
        for piece in &self.pieces {
            let (attr, left, zero, width, precision, conversion) = match piece {
                Piece::Literal(text) => {
                    writer.write_str(text)?;
                    continue;
                }
                Piece::Field {
                    attr,
                    left,
                    zero,
                    width,
                    precision,
                    conversion,
                } => (*attr, *left, *zero, *width, *precision, *conversion),
            };
            scratch.clear();
            let number: Option<f64> = match attr {
                Attr::Created => Some(since_epoch.as_secs_f64()),
                Attr::Msecs => Some(f64::from(since_epoch.subsec_millis())),
                Attr::RelativeCreated => Some(self.started.elapsed().as_secs_f64() * 1000.0),
                Attr::LevelNo => Some(f64::from(levelno)),
                Attr::LineNo => Some(f64::from(meta.line().unwrap_or(0))),
                Attr::Process => Some(f64::from(std::process::id())),
                Attr::Thread => {
                    let _ = write!(scratch, "{:?}", std::thread::current().id());
                    None
                }
                Attr::ThreadName => {
                    scratch.push_str(std::thread::current().name().unwrap_or("MainThread"));
                    None
                }
                _ => None,
            };
            let text: &str = match attr {
                Attr::AscTime => &asctime,
                Attr::ProcessName => "MainProcess",
                Attr::LevelName => levelname,
                Attr::Message => &message,
                Attr::Name => meta.target(),
                Attr::Module => meta.module_path().unwrap_or("?"),
                Attr::PathName => meta.file().unwrap_or("?"),
                Attr::FileName => {
                    let file = meta.file().unwrap_or("?");
                    file.rsplit(['/', '\\']).next().unwrap_or(file)
                }
                Attr::FuncName => "?",
                _ => {
                    if let Some(n) = number {
                        match (conversion, precision) {
                            ('f', p) => {
                                let _ = write!(scratch, "{n:.*}", p.unwrap_or(6));
                            }
                            ('d' | 'i', _) => {
                                let _ = write!(scratch, "{}", n as i64);
                            }
                            (_, _)
                                if n.fract() == 0.0
                                    && !matches!(attr, Attr::Created | Attr::RelativeCreated) =>
                            {
                                let _ = write!(scratch, "{}", n as i64);
                            }
                            _ => {
                                let _ = write!(scratch, "{n}");
                            }
                        }
                    }
                    &scratch
                }
            };
            // `%.Ns` keeps the first N characters of a text.
            let text = match (number, precision, conversion) {
                (None, Some(p), 's') => match text.char_indices().nth(p) {
                    Some((cut, _)) => &text[..cut],
                    None => text,
                },
                _ => text,
            };
            let len = if width == 0 { 0 } else { text.chars().count() };
            if len >= width {
                writer.write_str(text)?;
            } else if left {
                writer.write_str(text)?;
                write!(writer, "{:1$}", "", width - len)?;
            } else {
                let pad = if zero && number.is_some() { '0' } else { ' ' };
                for _ in 0..width - len {
                    writer.write_char(pad)?;
                }
                writer.write_str(text)?;
            }
        }
        writeln!(writer)
    }
}

/// The tracing level filter of a Python level number.
pub fn level_filter(level: LogLevel) -> tracing_subscriber::filter::LevelFilter {
    use tracing_subscriber::filter::LevelFilter;
    match level.0 {
        0..=10 => LevelFilter::DEBUG,
        11..=20 => LevelFilter::INFO,
        21..=30 => LevelFilter::WARN,
        _ => LevelFilter::ERROR,
    }
}

/// Installs a global subscriber that writes the log to stderr in `format`,
/// at `level` and above; does nothing if a global subscriber is already
/// installed. A server's configuration does this with
/// [`Config::init_logging`](crate::Config::init_logging).
pub fn init(level: LogLevel, format: PythonFormat) {
    init_with(level, format);
}

/// As [`init`], with one JSON object a line ([`JsonFormat`]): `log_format = json`.
pub fn init_json(level: LogLevel) {
    init_with(level, JsonFormat);
}

fn init_with<F>(level: LogLevel, format: F)
where
    F: for<'w> FormatEvent<
            tracing_subscriber::Registry,
            tracing_subscriber::fmt::format::DefaultFields,
        > + Send
        + Sync
        + 'static,
{
    let _ = tracing_subscriber::fmt()
        .with_max_level(level_filter(level))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .event_format(format)
        .try_init();
}

/// How log lines are written (`log_format`): Python `logging`'s text
/// (`console_format`, the default) or one JSON object a line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// `console_format` and `datefmt`, as the original.
    #[default]
    Text,
    /// [`JsonFormat`].
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        match text.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(()),
        }
    }
}

/// The log as one JSON object a line (`log_format = json`): `time` (UTC,
/// RFC 3339, milliseconds), `level` (Python's names), `message`, `session`
/// (the session id, in a session), `peer` (the session's client), and the
/// event's own fields (a handled packet's `handler`, `outcome`, `duration`
/// in seconds, at DEBUG).
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonFormat;

#[derive(Default)]
struct JsonVisitor {
    fields: serde_json::Map<String, serde_json::Value>,
}

impl JsonVisitor {
    fn put(&mut self, field: &Field, value: serde_json::Value) {
        self.fields.insert(field.name().to_owned(), value);
    }
}

impl Visit for JsonVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
}

impl<S, N> FormatEvent<S, N> for JsonFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut object = serde_json::Map::new();
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        object.insert("time".to_owned(), time.into());
        object.insert(
            "level".to_owned(),
            level_name(event.metadata().level()).0.into(),
        );
        let mut visitor = JsonVisitor::default();
        event.record(&mut visitor);
        let message = visitor.fields.remove("message").unwrap_or_default();
        object.insert("message".to_owned(), message);
        // The session's fields (`id`, `peer`), from the innermost session span.
        if let Some(scope) = ctx.event_scope() {
            for span in scope {
                if span.name() != "session" {
                    continue;
                }
                if let Some(fields) = span.extensions().get::<FormattedFields<N>>() {
                    for pair in fields.fields.split(' ') {
                        let Some((key, value)) = pair.split_once('=') else {
                            continue;
                        };
                        let key = if key == "id" { "session" } else { key };
                        object.insert(key.to_owned(), value.trim_matches('"').into());
                    }
                }
                break;
            }
        }
        object.extend(visitor.fields);
        writeln!(writer, "{}", serde_json::Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_names_and_numbers() {
        assert_eq!(LogLevel::parse("warning"), Some(LogLevel::WARNING));
        assert_eq!(LogLevel::parse("35").map(LogLevel::name), Some("ERROR"));
        assert_eq!(LogLevel::parse("loud"), None);
    }
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn render(format: &str, datefmt: &str, f: impl FnOnce()) -> String {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .event_format(PythonFormat::new(format, datefmt).unwrap())
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn the_original_default_format() {
        let out = render("[%(levelname)s] %(asctime)s %(message)s", "%Y", || {
            tracing::info!("Serving");
        });
        let year = Local::now().format("%Y").to_string();
        assert_eq!(out, format!("[INFO] {year} Serving\n"));
    }

    #[test]
    fn session_lines_carry_the_session_id() {
        let out = render("%(levelname)s %(message)s", "%H", || {
            let span = tracing::info_span!("session", id = "7fd5fab0-5393-44ec-a75d-fa4f2c7e4562");
            let _enter = span.enter();
            tracing::debug!("Expected stream length is {}", 11);
        });
        assert_eq!(
            out,
            "DEBUG (7fd5fab0-5393-44ec-a75d-fa4f2c7e4562) Expected stream length is 11\n"
        );
    }

    #[test]
    fn width_flags_precision_and_percent() {
        let out = render(
            "%(levelname)-8s|%(levelno)3d|%(levelname).1s|100%%",
            "%H",
            || {
                tracing::warn!("x");
            },
        );
        assert_eq!(out, "WARNING | 30|W|100%\n");
    }

    #[test]
    fn the_date_is_rendered_once_per_line() {
        // Nanoseconds would differ between two renderings of the clock.
        let out = render(
            "%(asctime)s|%(asctime)-40s|%(asctime).2s",
            "%H%M%S%.9f",
            || {
                tracing::info!("x");
            },
        );
        let line = out.trim_end_matches('\n');
        let parts: Vec<&str> = line.split('|').collect();
        assert_eq!(parts.len(), 3, "{line:?}");
        assert_eq!(parts[0].len(), 16, "{line:?}");
        assert_eq!(parts[1].trim_end(), parts[0]);
        assert_eq!(parts[1].len(), 40);
        assert_eq!(parts[2], &parts[0][..2]);
    }

    #[test]
    fn numbers_and_texts_with_widths() {
        let out = render(
            "%(levelno)05d|%(levelname)8s|%(lineno)-4d|%(funcName)s|%(processName).4s",
            "%H",
            || {
                tracing::error!("x");
            },
        );
        let parts: Vec<&str> = out.trim_end().split('|').collect();
        assert_eq!(parts[0], "00040");
        assert_eq!(parts[1], "   ERROR");
        assert_eq!(parts[2].len(), 4);
        assert!(parts[2].trim_end().parse::<u32>().is_ok(), "{out:?}");
        assert_eq!(&parts[3..], ["?", "Main"]);
    }

    #[test]
    fn fields_other_than_the_message_are_appended() {
        let out = render("%(message)s", "%H", || {
            tracing::error!(code = 7, "failed");
        });
        assert_eq!(out, "failed code=7\n");
    }

    #[test]
    fn bad_formats_are_refused() {
        assert_eq!(
            PythonFormat::new("%(nope)s", "%H").unwrap_err(),
            FormatError::UnknownAttribute("nope".into())
        );
        assert!(matches!(
            PythonFormat::new("50% done", "%H").unwrap_err(),
            FormatError::Malformed(2)
        ));
        assert!(matches!(
            PythonFormat::new("%(message)", "%H").unwrap_err(),
            FormatError::Malformed(0)
        ));
        assert!(PythonFormat::new("%(message)s", "%Y-%").is_err());
    }
}
