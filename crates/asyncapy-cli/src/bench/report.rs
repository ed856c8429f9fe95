//! The final report: one JSON object (`--json`) or a human-readable table.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::time::Duration;

use serde::Serialize;

use super::stats::{ErrorKind, Resent, Totals};

/// The run's settings, echoed in the report.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Settings {
    /// `host:port` as resolved.
    pub(crate) target: String,
    /// Whether connections use TLS (`--tls`).
    pub(crate) tls: bool,
    /// `persistent` or `per-request`.
    pub(crate) mode: &'static str,
    /// `json` or `ziproto`.
    pub(crate) encoding: &'static str,
    /// Concurrent connection slots.
    pub(crate) connections: usize,
    /// Requests outstanding per connection.
    pub(crate) pipeline: usize,
    /// Encoded payload size in bytes.
    pub(crate) payload_size: usize,
    /// Size of the Content-Length field.
    pub(crate) header_size: u8,
    /// Byte order of the Content-Length field.
    pub(crate) byteorder: &'static str,
    /// Runtime worker threads.
    pub(crate) threads: usize,
    /// The warm-up, in seconds (not measured).
    pub(crate) warmup_secs: f64,
    /// `--rate`: the total request rate asked for; `None` when requests
    /// follow replies as fast as they come.
    pub(crate) rate: Option<f64>,
    /// `--resend`: what a restarting server loses is sent again.
    pub(crate) resend: bool,
}

/// Latency percentiles, in microseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Latency {
    /// Smallest.
    pub(crate) min: u64,
    /// Arithmetic mean.
    pub(crate) mean: f64,
    /// Median.
    pub(crate) p50: u64,
    /// 90th percentile.
    pub(crate) p90: u64,
    /// 99th percentile.
    pub(crate) p99: u64,
    /// 99.9th percentile.
    pub(crate) p99_9: u64,
    /// Largest.
    pub(crate) max: u64,
}

/// Errors by kind; failure replies by code.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Errors {
    /// Every error of every kind.
    pub(crate) total: u64,
    /// Counts by kind (`connect_refused`, `timeout`, `mismatch`, …), zeros included.
    #[serde(flatten)]
    pub(crate) by_kind: BTreeMap<&'static str, u64>,
    /// Failure replies by code (`ERR_…`); only codes seen.
    pub(crate) failure_replies: BTreeMap<&'static str, u64>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    /// What was run.
    pub(crate) settings: Settings,
    /// Measured time, in seconds.
    pub(crate) duration_secs: f64,
    /// Measured requests answered with a correct echo.
    pub(crate) requests: u64,
    /// `requests / duration_secs`.
    pub(crate) requests_per_sec: f64,
    /// Latency of the measured requests.
    pub(crate) latency_us: Latency,
    /// Everything that went wrong.
    pub(crate) errors: Errors,
    /// Bytes written (measured phase).
    pub(crate) bytes_sent: u64,
    /// Bytes read (measured phase).
    pub(crate) bytes_received: u64,
    /// With `--resend`: what was tried again (zeros without it).
    pub(crate) resent: Resent,
}

impl Report {
    /// The report of merged figures `stats` over `elapsed` of measurement.
    pub(crate) fn new(settings: Settings, stats: &Totals, elapsed: Duration) -> Report {
        let h = &stats.latency_us;
        let latency = if h.is_empty() {
            Latency::default()
        } else {
            Latency {
                min: h.min(),
                mean: (h.mean() * 10.0).round() / 10.0,
                p50: h.value_at_quantile(0.5),
                p90: h.value_at_quantile(0.9),
                p99: h.value_at_quantile(0.99),
                p99_9: h.value_at_quantile(0.999),
                max: h.max(),
            }
        };
        let errors = Errors {
            total: stats.errors.total(),
            by_kind: ErrorKind::ALL
                .iter()
                .map(|&k| (k.name(), stats.errors.of(k)))
                .collect(),
            failure_replies: stats
                .errors
                .failures()
                .map(|(code, n)| (code.as_str(), n))
                .collect(),
        };
        let secs = elapsed.as_secs_f64();
        let rate = if secs > 0.0 {
            stats.requests as f64 / secs
        } else {
            0.0
        };
        Report {
            settings,
            duration_secs: (secs * 1000.0).round() / 1000.0,
            requests: stats.requests,
            requests_per_sec: (rate * 10.0).round() / 10.0,
            latency_us: latency,
            errors,
            bytes_sent: stats.bytes_sent,
            bytes_received: stats.bytes_received,
            resent: stats.resent,
        }
    }

    /// The report as one line of JSON.
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

impl fmt::Display for Report {
    /// The human table.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        writeln!(
            f,
            "asyncapy bench: {}{} | {} | {} connection{} | pipeline {} | {} B {} payload | {}-byte {}-endian header | {} thread{}",
            s.target,
            if s.tls { " over TLS" } else { "" },
            s.mode,
            s.connections,
            plural(s.connections),
            s.pipeline,
            s.payload_size,
            s.encoding,
            s.header_size,
            s.byteorder,
            s.threads,
            plural(s.threads),
        )?;
        let l = &self.latency_us;
        let mut rows: Vec<(&str, String)> = vec![
            ("requests", self.requests.to_string()),
            (
                "duration",
                format!(
                    "{:.3} s (after {} s of warm-up)",
                    self.duration_secs, s.warmup_secs
                ),
            ),
            (
                "throughput",
                match s.rate {
                    Some(rate) => format!(
                        "{:.1} req/s (rate asked: {rate:.1} req/s; latency from each request's scheduled time)",
                        self.requests_per_sec
                    ),
                    None => format!("{:.1} req/s", self.requests_per_sec),
                },
            ),
            (
                "latency",
                if self.requests == 0 {
                    // Not zeros: there is no latency to show.
                    "none (no request was answered)".to_owned()
                } else {
                    format!(
                        "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (mean {:.1}, min {}) µs",
                        l.p50, l.p90, l.p99, l.p99_9, l.max, l.mean, l.min
                    )
                },
            ),
            (
                "transfer",
                format!(
                    "{} sent, {} received",
                    human_bytes(self.bytes_sent),
                    human_bytes(self.bytes_received)
                ),
            ),
        ];
        let mut errors = String::new();
        if self.errors.total == 0 {
            errors.push_str("none");
        } else {
            let _ = write!(errors, "{} in all:", self.errors.total);
            for (kind, n) in self.errors.by_kind.iter().filter(|(_, &n)| n > 0) {
                let _ = write!(errors, " {kind} {n},");
            }
            for (code, n) in &self.errors.failure_replies {
                let _ = write!(errors, " failure reply {code} {n},");
            }
            errors.pop();
        }
        rows.push(("errors", errors));
        if s.resend {
            rows.push((
                "resent",
                format!(
                    "{} request{}, {} connection attempt{}",
                    self.resent.requests,
                    plural(self.resent.requests as usize),
                    self.resent.connects,
                    plural(self.resent.connects as usize),
                ),
            ));
        }
        for (name, value) in rows {
            writeln!(f, "  {name:<11} {value}")?;
        }
        Ok(())
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::stats::{shared_histogram, ConnStats};
    use asyncaproto::ErrorCode;

    fn settings() -> Settings {
        Settings {
            target: "127.0.0.1:8081".into(),
            tls: false,
            mode: "persistent",
            encoding: "json",
            connections: 1,
            pipeline: 1,
            payload_size: 64,
            header_size: 4,
            byteorder: "big",
            threads: 1,
            warmup_secs: 0.0,
            rate: None,
            resend: false,
        }
    }

    #[test]
    fn json_report_carries_counts_and_errors() {
        let histogram = shared_histogram().expect("histogram");
        let mut conn = ConnStats::new(histogram.clone(), Duration::from_secs(1));
        conn.requests = 10;
        for _ in 0..10 {
            conn.record_latency(100);
        }
        conn.errors.add(ErrorKind::Mismatch);
        conn.errors.add_failure(ErrorCode::TimedOut);
        let mut stats = Totals::new(&histogram);
        stats.add(&mut conn);
        stats.take_latencies(&histogram);
        let report = Report::new(settings(), &stats, Duration::from_secs(2));
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("json");
        assert_eq!(json["requests"], 10);
        assert_eq!(json["requests_per_sec"], 5.0);
        assert_eq!(json["latency_us"]["p50"], 100);
        assert_eq!(json["errors"]["total"], 2);
        assert_eq!(json["errors"]["mismatch"], 1);
        assert_eq!(json["errors"]["timeout"], 0);
        assert_eq!(json["errors"]["failure_replies"]["ERR_TIMED_OUT"], 1);
        let table = report.to_string();
        assert!(table.contains("mismatch 1"), "{table}");
        assert!(table.contains("failure reply ERR_TIMED_OUT 1"), "{table}");
    }

    #[test]
    fn no_answer_shows_no_latency() {
        let histogram = shared_histogram().expect("histogram");
        let mut conn = ConnStats::new(histogram.clone(), Duration::from_secs(1));
        conn.errors.add(ErrorKind::ConnectRefused);
        let mut stats = Totals::new(&histogram);
        stats.add(&mut conn);
        stats.take_latencies(&histogram);
        let table = Report::new(settings(), &stats, Duration::from_secs(1)).to_string();
        assert!(
            table.contains("\n  latency     none (no request was answered)\n"),
            "{table}"
        );
    }

    #[test]
    fn bytes_read_humanely() {
        assert_eq!(human_bytes(10), "10 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }
}
