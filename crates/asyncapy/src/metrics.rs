//! Prometheus metrics (feature `metrics`), served as text exposition at
//! `GET /metrics` on `metrics_addr`.
//!
//! A leaf module: the server, the sessions' registry and the API key filter
//! call it; it calls none of them. Every metric a packet touches on its way
//! (the handler's `ok` counter and duration histogram, the byte counters) is a
//! handle registered once, when the server binds, so counting a packet costs
//! an atomic add or two and a histogram push, never a lookup. Failures,
//! rarer, register their labelled counter when they happen.
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `asyncapy_requests_total` | counter | `handler`, `outcome` | packets dispatched; `outcome` is `ok` or the `ERR_*` code replied |
//! | `asyncapy_request_duration_seconds` | histogram | `handler` | from the complete frame to the last reply queued |
//! | `asyncapy_sessions` | gauge | | open sessions |
//! | `asyncapy_connections_total` | counter | | connections accepted |
//! | `asyncapy_refused_total` | counter | `reason` | failure replies of the server's own (see [`Refusal`]) |
//! | `asyncapy_bytes_received_total` | counter | | bytes read from sessions |
//! | `asyncapy_bytes_sent_total` | counter | | bytes written to sessions |
//! | `asyncapy_key_store_errors_total` | counter | `store` | API key store failures |
//! | `asyncapy_limits_store_errors_total` | counter | | shared limits store failures |
//!
//! Without the feature, [`Metrics`] is a type with no values: the server's
//! `Option<Arc<Metrics>>` is always `None`, and no call site needs a `cfg`.

use asyncaproto::ErrorCode;

/// The `handler` label of a packet no handler took.
pub(crate) const NO_HANDLER: &str = "(none)";

/// Why the server refused a connection or a packet on its own (the `reason`
/// label of `asyncapy_refused_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Over `max_connections` (`ERR_SERVER_BUSY`).
    Busy,
    /// Over `session_limit` (`ERR_SESSION_LIMIT_REACHED`).
    SessionLimit,
    /// Over `rate_limit` (`ERR_RATE_LIMITED`).
    RateLimited,
    /// Content-Length above `max_packet_size` (`ERR_PACKET_TOO_LARGE`).
    TooLarge,
    /// A bad frame head (`ERR_HEADER_INVALID`).
    HeaderInvalid,
    /// A payload that does not decode (`ERR_REQUEST_MALFORMED`).
    Malformed,
    /// No complete packet, or a handler's end, within `timeout` (`ERR_TIMED_OUT`).
    TimedOut,
    /// A missing or bad PROXY header, or a proxy outside `proxy_trusted`.
    Proxy,
    /// A failed TLS handshake.
    Tls,
}

impl Refusal {
    /// Every reason, in the order of their counters.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    const ALL: [Refusal; 9] = [
        Refusal::Busy,
        Refusal::SessionLimit,
        Refusal::RateLimited,
        Refusal::TooLarge,
        Refusal::HeaderInvalid,
        Refusal::Malformed,
        Refusal::TimedOut,
        Refusal::Proxy,
        Refusal::Tls,
    ];

    /// The `reason` label.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    fn label(self) -> &'static str {
        match self {
            Refusal::Busy => "busy",
            Refusal::SessionLimit => "session_limit",
            Refusal::RateLimited => "rate_limited",
            Refusal::TooLarge => "too_large",
            Refusal::HeaderInvalid => "header_invalid",
            Refusal::Malformed => "malformed",
            Refusal::TimedOut => "timed_out",
            Refusal::Proxy => "proxy",
            Refusal::Tls => "tls",
        }
    }

    /// The refusal a failure reply of the server's own is, if it is one.
    pub(crate) fn of(code: ErrorCode) -> Option<Refusal> {
        Some(match code {
            ErrorCode::ServerBusy => Refusal::Busy,
            ErrorCode::SessionLimitReached => Refusal::SessionLimit,
            ErrorCode::RateLimited => Refusal::RateLimited,
            ErrorCode::PacketTooLarge => Refusal::TooLarge,
            ErrorCode::HeaderInvalid => Refusal::HeaderInvalid,
            ErrorCode::RequestMalformed => Refusal::Malformed,
            ErrorCode::TimedOut => Refusal::TimedOut,
            _ => return None,
        })
    }
}

#[cfg(feature = "metrics")]
pub(crate) use enabled::{start, Metrics};

#[cfg(not(feature = "metrics"))]
pub(crate) use disabled::{start, Metrics};

/// The packets of a batch that were handled ok without waiting, not yet
/// counted: they are counted together, with the time from the batch's
/// arrival to when they are counted (at the end of the batch, or when a
/// packet of another route or outcome comes), so that a pipelined batch
/// reads the clock once, not once a packet. Counted when dropped, however
/// the batch ends.
pub(crate) struct Settled<'a> {
    metrics: &'a Metrics,
    arrived: tokio::time::Instant,
    route: Option<usize>,
    count: u64,
}

impl<'a> Settled<'a> {
    pub(crate) fn new(metrics: &'a Metrics, arrived: tokio::time::Instant) -> Self {
        Settled {
            metrics,
            arrived,
            route: None,
            count: 0,
        }
    }

    /// One more ok packet of `route`.
    pub(crate) fn add(&mut self, route: Option<usize>) {
        if self.count > 0 && self.route != route {
            self.settle();
        }
        self.route = route;
        self.count += 1;
    }

    /// Counts the packets so far.
    pub(crate) fn settle(&mut self) {
        if self.count > 0 {
            let elapsed = self.arrived.elapsed();
            self.metrics.requests_ok(self.route, self.count, elapsed);
            self.count = 0;
        }
    }
}

impl Drop for Settled<'_> {
    fn drop(&mut self) {
        self.settle();
    }
}

/// A server's metrics endpoint, once started (all `None` without `metrics_addr`).
pub(crate) struct Endpoint {
    /// The metrics the server counts in.
    pub(crate) metrics: Option<std::sync::Arc<Metrics>>,
    /// The address `GET /metrics` is served on.
    pub(crate) addr: Option<std::net::SocketAddr>,
    /// The endpoint's task, to abort when the server has stopped.
    pub(crate) task: Option<tokio::task::JoinHandle<()>>,
}

#[cfg(feature = "metrics")]
mod enabled {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use http_body_util::Full;
    use hyper::{header, Method, Request, Response, StatusCode};
    use metrics::{Counter, Gauge, Key, Label, Level, Metadata, Recorder, Unit};
    use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
    use tokio::net::TcpListener;

    use super::{Endpoint, Refusal, NO_HANDLER};

    /// Binds `addr` (when set) and serves the metrics of a server whose
    /// routes are `routes` (by id) there, on a task of the current runtime.
    pub(crate) async fn start<'a>(
        addr: Option<std::net::SocketAddr>,
        routes: impl IntoIterator<Item = &'a str>,
    ) -> std::io::Result<Endpoint> {
        let Some(addr) = addr else {
            return Ok(Endpoint {
                metrics: None,
                addr: None,
                task: None,
            });
        };
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let metrics = Arc::new(Metrics::new(routes));
        let task = tokio::spawn(serve(metrics.clone(), listener));
        tracing::info!("Metrics at http://{addr}/metrics");
        Ok(Endpoint {
            metrics: Some(metrics),
            addr: Some(addr),
            task: Some(task),
        })
    }

    const REQUESTS: &str = "asyncapy_requests_total";
    const DURATION: &str = "asyncapy_request_duration_seconds";
    const SESSIONS: &str = "asyncapy_sessions";
    const CONNECTIONS: &str = "asyncapy_connections_total";
    const REFUSED: &str = "asyncapy_refused_total";
    const RECEIVED: &str = "asyncapy_bytes_received_total";
    const SENT: &str = "asyncapy_bytes_sent_total";
    const KEY_STORE_ERRORS: &str = "asyncapy_key_store_errors_total";
    const LIMITS_STORE_ERRORS: &str = "asyncapy_limits_store_errors_total";

    const DURATION_HELP: &str =
        "Time from a packet's complete frame to its last reply queued, by handler.";

    /// The upper bounds of the duration histogram's buckets, in seconds.
    const BUCKETS: [f64; 16] = [
        0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
        0.5, 1.0, 2.5, 10.0,
    ];

    /// [`BUCKETS`] in nanoseconds.
    const BUCKET_NS: [u64; BUCKETS.len()] = {
        let mut ns = [0u64; BUCKETS.len()];
        let mut i = 0;
        while i < BUCKETS.len() {
            ns[i] = (BUCKETS[i] * 1e9) as u64;
            i += 1;
        }
        ns
    };

    /// How often the histograms' recent samples are folded into their buckets
    /// when nobody scrapes (a scrape folds them too).
    const UPKEEP: Duration = Duration::from_secs(2);

    static METADATA: Metadata<'static> = Metadata::new("asyncapy", Level::INFO, None);

    /// A server's metrics: its own registry (two servers in one process
    /// count apart), and the handles the hot paths use.
    pub(crate) struct Metrics {
        recorder: PrometheusRecorder,
        sessions: Gauge,
        connections: Counter,
        received: Counter,
        sent: Counter,
        limits_store_errors: Counter,
        refused: [Counter; Refusal::ALL.len()],
        /// By route id (the dispatcher's order), then the packets no handler took.
        routes: Vec<RouteMetrics>,
    }

    /// A route's `ok` counter and duration histogram, kept in plain
    /// atomics: a packet adds its time to its bucket (one cache line, two
    /// relaxed adds). The `ok` count is handed to the registry's counter
    /// before each scrape and every [`UPKEEP`]; the histogram is exposed from
    /// these buckets ([`Metrics::render`]), in the registry's own text format
    /// beside its metrics. (The registry's histograms cost a timestamp, an
    /// epoch pin and a queue push per sample, 3 to 4 times what a 1 µs echo
    /// can spare within 5 %; see BENCHMARKS.md.)
    struct RouteMetrics {
        name: String,
        ok: Counter,
        /// By bucket of [`BUCKETS`], then +Inf: samples and their nanoseconds.
        buckets: [Bucket; BUCKETS.len() + 1],
        /// Samples that were failures (counted before their bucket).
        failed: AtomicU64,
        /// The `ok` count already handed to the registry.
        ok_flushed: AtomicU64,
    }

    #[derive(Default)]
    #[repr(align(16))]
    struct Bucket {
        count: AtomicU64,
        nanos: AtomicU64,
    }

    impl RouteMetrics {
        /// `n` samples of `elapsed`.
        fn record(&self, elapsed: Duration, n: u64) {
            let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
            let bucket = &self.buckets[BUCKET_NS.partition_point(|bound| *bound < ns)];
            bucket.count.fetch_add(n, Ordering::Relaxed);
            bucket
                .nanos
                .fetch_add(ns.saturating_mul(n), Ordering::Relaxed);
        }

        /// Hands the `ok` count so far to the registry's counter: the
        /// samples less the failures (read after them, so never more than
        /// the true count; what it misses comes next time).
        fn flush(&self) {
            let total: u64 = self
                .buckets
                .iter()
                .map(|b| b.count.load(Ordering::Relaxed))
                .sum();
            let ok = total.saturating_sub(self.failed.load(Ordering::Relaxed));
            let before = self.ok_flushed.fetch_max(ok, Ordering::Relaxed);
            if ok > before {
                self.ok.increment(ok - before);
            }
        }

        /// The histogram's samples in the text exposition format.
        fn expose(&self, out: &mut String) {
            use std::fmt::Write as _;
            let handler = escape(&self.name);
            let (mut count, mut nanos) = (0u64, 0u64);
            for (i, bucket) in self.buckets.iter().enumerate() {
                count += bucket.count.load(Ordering::Relaxed);
                nanos = nanos.wrapping_add(bucket.nanos.load(Ordering::Relaxed));
                let le = match BUCKETS.get(i) {
                    Some(bound) => bound.to_string(),
                    None => "+Inf".to_owned(),
                };
                let _ = writeln!(
                    out,
                    "{DURATION}_bucket{{handler=\"{handler}\",le=\"{le}\"}} {count}"
                );
            }
            let sum = nanos as f64 / 1e9;
            let _ = writeln!(out, "{DURATION}_sum{{handler=\"{handler}\"}} {sum}");
            let _ = writeln!(out, "{DURATION}_count{{handler=\"{handler}\"}} {count}");
        }
    }

    /// A label value as the exposition format writes it.
    fn escape(value: &str) -> String {
        value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    }

    impl Metrics {
        /// The metrics of a server whose routes are `routes` (by id).
        pub(crate) fn new<'a>(routes: impl IntoIterator<Item = &'a str>) -> Metrics {
            let recorder = PrometheusBuilder::new().build_recorder();
            let describe = |name: &'static str, unit: Option<Unit>, doc: &'static str| {
                recorder.describe_counter(name.into(), unit, doc.into());
            };
            describe(
                REQUESTS,
                None,
                "Packets dispatched, by handler and outcome (ok, or the ERR_* code replied).",
            );
            describe(
                CONNECTIONS,
                None,
                "Connections accepted (refused ones included).",
            );
            describe(
                REFUSED,
                None,
                "Connections and packets the server refused on its own, by reason.",
            );
            describe(RECEIVED, Some(Unit::Bytes), "Bytes read from sessions.");
            describe(SENT, Some(Unit::Bytes), "Bytes written to sessions.");
            describe(KEY_STORE_ERRORS, None, "API key store failures, by store.");
            describe(
                LIMITS_STORE_ERRORS,
                None,
                "Failures of the shared limits store (limits_store), each handled by limits_fail.",
            );
            recorder.describe_gauge(SESSIONS.into(), None, "Open sessions.".into());
            let counter = |name: &'static str, labels: Vec<Label>| {
                recorder.register_counter(&Key::from_parts(name, labels), &METADATA)
            };
            let refused = Refusal::ALL
                .map(|reason| counter(REFUSED, vec![Label::new("reason", reason.label())]));
            let route = |name: &str| RouteMetrics {
                name: name.to_owned(),
                ok: counter(
                    REQUESTS,
                    vec![
                        Label::new("handler", name.to_owned()),
                        Label::new("outcome", "ok"),
                    ],
                ),
                buckets: std::array::from_fn(|_| Bucket::default()),
                failed: AtomicU64::new(0),
                ok_flushed: AtomicU64::new(0),
            };
            let mut routes: Vec<RouteMetrics> = routes.into_iter().map(route).collect();
            routes.push(route(NO_HANDLER));
            Metrics {
                sessions: recorder.register_gauge(&Key::from_name(SESSIONS), &METADATA),
                connections: counter(CONNECTIONS, Vec::new()),
                received: counter(RECEIVED, Vec::new()),
                sent: counter(SENT, Vec::new()),
                limits_store_errors: counter(LIMITS_STORE_ERRORS, Vec::new()),
                refused,
                routes,
                recorder,
            }
        }

        /// A connection was accepted.
        pub(crate) fn connection(&self) {
            self.connections.increment(1);
        }

        /// A session opened (`1.0`) or ended (`-1.0`).
        pub(crate) fn sessions(&self, change: f64) {
            self.sessions.increment(change);
        }

        /// The server refused a connection or a packet.
        pub(crate) fn refused(&self, reason: Refusal) {
            self.refused[reason as usize].increment(1);
        }

        /// `n` bytes were read from a session.
        pub(crate) fn received(&self, n: usize) {
            self.received.increment(n as u64);
        }

        /// `n` bytes were written to a session.
        pub(crate) fn sent(&self, n: usize) {
            self.sent.increment(n as u64);
        }

        /// A packet was dispatched to `route` (`None`: no handler took it),
        /// with `failure` (`None`: ok) after `elapsed`.
        pub(crate) fn request(
            &self,
            route: Option<usize>,
            failure: Option<&str>,
            elapsed: Duration,
        ) {
            let last = self.routes.len() - 1;
            let metrics = &self.routes[route.unwrap_or(last).min(last)];
            if failure.is_some() {
                metrics.failed.fetch_add(1, Ordering::Relaxed);
            }
            metrics.record(elapsed, 1);
            match failure {
                None => {}
                Some(code) => self
                    .recorder
                    .register_counter(
                        &Key::from_parts(
                            REQUESTS,
                            vec![
                                Label::new("handler", metrics.name.clone()),
                                Label::new("outcome", code.to_owned()),
                            ],
                        ),
                        &METADATA,
                    )
                    .increment(1),
            }
        }

        /// `n` packets were dispatched to `route` and ok, after `elapsed` each.
        pub(crate) fn requests_ok(&self, route: Option<usize>, n: u64, elapsed: Duration) {
            let last = self.routes.len() - 1;
            self.routes[route.unwrap_or(last).min(last)].record(elapsed, n);
        }

        /// An API key store (`store`: its name) failed.
        pub(crate) fn key_store_error(&self, store: &'static str) {
            self.recorder
                .register_counter(
                    &Key::from_parts(KEY_STORE_ERRORS, vec![Label::new("store", store)]),
                    &METADATA,
                )
                .increment(1);
        }

        /// The shared limits store failed.
        pub(crate) fn limits_store_error(&self) {
            self.limits_store_errors.increment(1);
        }

        /// Hands what packets counted in plain atomics to the registry.
        fn flush(&self) {
            for route in &self.routes {
                route.flush();
            }
        }

        /// The text exposition of every metric, up to date: the registry's,
        /// then the duration histogram.
        pub(crate) fn render(&self) -> String {
            self.flush();
            let mut text = self.recorder.handle().render();
            text.push_str(&format!(
                "# HELP {DURATION} {DURATION_HELP}\n# TYPE {DURATION} histogram\n"
            ));
            for route in &self.routes {
                route.expose(&mut text);
            }
            text
        }
    }

    /// Serves `GET /metrics` on `listener` until dropped, and folds the
    /// histograms' samples every [`UPKEEP`].
    async fn serve(metrics: Arc<Metrics>, listener: TcpListener) {
        let handle = metrics.recorder.handle();
        let mut connections = tokio::task::JoinSet::new();
        let mut upkeep = tokio::time::interval(UPKEEP);
        loop {
            let accepted = tokio::select! {
                _ = upkeep.tick() => {
                    metrics.flush();
                    handle.run_upkeep();
                    continue;
                }
                accepted = listener.accept() => accepted,
            };
            while connections.try_join_next().is_some() {}
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!("Metrics endpoint: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let metrics = metrics.clone();
            connections.spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<_>| {
                    let response = respond(&metrics, &request);
                    async move { Ok::<_, Infallible>(response) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                // A scraper that keeps its connection open is dropped after a while.
                let _ = tokio::time::timeout(Duration::from_secs(60), connection).await;
            });
        }
    }

    fn respond<B>(metrics: &Metrics, request: &Request<B>) -> Response<Full<Bytes>> {
        let (status, content_type, body) = match (request.method(), request.uri().path()) {
            (&Method::GET | &Method::HEAD, "/metrics") => (
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                metrics.render(),
            ),
            (_, "/metrics") => (
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain",
                "GET only\n".to_owned(),
            ),
            _ => (
                StatusCode::NOT_FOUND,
                "text/plain",
                "metrics are at /metrics\n".to_owned(),
            ),
        };
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(content_type),
        );
        response
    }
}

#[cfg(not(feature = "metrics"))]
mod disabled {
    use std::time::Duration;

    use super::{Endpoint, Refusal};

    /// Without the `metrics` feature there is no endpoint (`metrics_addr`
    /// is refused by `Config::validate`).
    pub(crate) async fn start<'a>(
        addr: Option<std::net::SocketAddr>,
        routes: impl IntoIterator<Item = &'a str>,
    ) -> std::io::Result<Endpoint> {
        let _ = (addr, routes.into_iter());
        Ok(Endpoint {
            metrics: None,
            addr: None,
            task: None,
        })
    }

    /// Without the `metrics` feature: a type with no values.
    pub(crate) enum Metrics {}

    #[allow(dead_code, reason = "the calls of the `metrics` build, never made")]
    impl Metrics {
        pub(crate) fn connection(&self) {
            match *self {}
        }
        pub(crate) fn sessions(&self, _: f64) {
            match *self {}
        }
        pub(crate) fn refused(&self, _: Refusal) {
            match *self {}
        }
        pub(crate) fn received(&self, _: usize) {
            match *self {}
        }
        pub(crate) fn sent(&self, _: usize) {
            match *self {}
        }
        pub(crate) fn request(&self, _: Option<usize>, _: Option<&str>, _: Duration) {
            match *self {}
        }
        pub(crate) fn requests_ok(&self, _: Option<usize>, _: u64, _: Duration) {
            match *self {}
        }
        pub(crate) fn key_store_error(&self, _: &'static str) {
            match *self {}
        }
        pub(crate) fn limits_store_error(&self) {
            match *self {}
        }
    }
}
