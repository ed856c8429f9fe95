//! Engine log records, queued and emitted through Python's `logging` on the
//! trio thread (never taking the GIL on a tokio thread).

use super::*;

/// The log sink the global `tracing` layer writes to: the running engine's queue.
pub(crate) fn log_sink() -> &'static RwLock<Option<Arc<Shared>>> {
    static SINK: OnceLock<RwLock<Option<Arc<Shared>>>> = OnceLock::new();
    SINK.get_or_init(|| RwLock::new(None))
}

/// The lowest Python level the log sink keeps.
pub(crate) static LOG_LEVEL: AtomicU8 = AtomicU8::new(20);

/// The session id a "session" span carries, kept in the span's extensions.
pub(crate) struct SessionId(String);

/// An event's message, with its other fields appended as ` name=value`.
#[derive(Default)]
pub(crate) struct Fields {
    pub(crate) message: String,
}

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        match field.name() {
            "message" => self.message.push_str(value),
            name => {
                use std::fmt::Write as _;
                let _ = write!(self.message, " {name}={value}");
            }
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            name => {
                let _ = write!(self.message, " {name}={value:?}");
            }
        }
    }
}

/// The `id` of a "session" span, and nothing else: its other fields (the
/// peer's address) are not formatted, which a session start would pay for
/// whether or not anything is logged.
struct SpanId(Option<String>);

impl tracing::field::Visit for SpanId {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "id" {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "id" {
            use std::fmt::Write as _;
            // A UUID: 36 characters, one allocation.
            let mut id = String::with_capacity(36);
            let _ = write!(id, "{value:?}");
            self.0 = Some(id);
        }
    }
}

/// Turns the engine's `tracing` records into [`Event::Log`]s: no GIL, no I/O.
pub(crate) struct PythonLogLayer;

pub(crate) fn python_level(level: &tracing::Level) -> u8 {
    match *level {
        tracing::Level::ERROR => 40,
        tracing::Level::WARN => 30,
        tracing::Level::INFO => 20,
        _ => 10,
    }
}

impl<S> tracing_subscriber::Layer<S> for PythonLogLayer
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn enabled(
        &self,
        metadata: &tracing::Metadata<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        metadata.is_span() || python_level(metadata.level()) >= LOG_LEVEL.load(Ordering::Relaxed)
    }

    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if attrs.metadata().name() != "session" {
            return;
        }
        let mut fields = SpanId(None);
        attrs.record(&mut fields);
        if let (Some(span), Some(sid)) = (ctx.span(id), fields.0) {
            span.extensions_mut().insert(SessionId(sid));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        let sink = log_sink().read().unwrap_or_else(PoisonError::into_inner);
        let Some(shared) = sink.as_ref() else {
            return;
        };
        let mut fields = Fields::default();
        event.record(&mut fields);
        let session = ctx.event_scope(event).and_then(|scope| {
            scope
                .into_iter()
                .find_map(|span| span.extensions().get::<SessionId>().map(|s| s.0.clone()))
        });
        shared.push(Event::Log {
            level: python_level(event.metadata().level()),
            session,
            message: fields.message,
            created: epoch_seconds(SystemTime::now()),
        });
    }
}

/// Installs the log layer as the process's `tracing` subscriber (once).
pub(crate) fn install_log_layer() {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        use tracing_subscriber::layer::SubscriberExt as _;
        let subscriber = tracing_subscriber::registry().with(PythonLogLayer);
        tracing::subscriber::set_global_default(subscriber).is_ok()
    });
}
