//! `asyncapy serve` instances behind real load balancers, sharing one real
//! `redis-server` through `limits_store`: HAProxy (`mode tcp`, round robin,
//! `send-proxy-v2`, health checks on the traffic port) and nginx (the stream
//! module, `proxy_protocol on`, v1). Each test starts its own Redis, servers
//! and balancer on free loopback ports and stops them when it ends.
//!
//! `haproxy`, `nginx` (with `libnginx-mod-stream`) and `redis-server` must be
//! installed: `scripts/test-deps.sh`.

#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

#[allow(dead_code, unreachable_pub)]
#[path = "../../asyncapy/tests/key_stores/redis_server.rs"]
mod redis_server;
mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis_server::RedisServer;
use serde_json::{json, Value};
use support::{Lines, PATIENCE};

/// A free loopback port (bound, read, released: the process that gets it
/// next binds it at once).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An `asyncapy serve` behind the balancer: its address, its metrics
/// address, its log.
struct Instance {
    child: Child,
    addr: String,
    metrics: String,
    log: Lines,
}

impl Instance {
    fn start(redis: &RedisServer, extra: &[&str]) -> Instance {
        let url = redis.url();
        let mut args = vec![
            "--proxy-protocol",
            "--proxy-trusted",
            "127.0.0.1",
            "--limits-store",
            &url,
            "--metrics-addr",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        // The line after "listening on" tells the metrics address.
        let mut started = support::serve(&args, 1, true);
        let metrics = metrics_address(&started.lines[0]);
        let log = Lines::read(started.child.stderr.take().unwrap());
        Instance {
            child: started.child,
            addr: started.addr,
            metrics,
            log,
        }
    }

    fn port(&self) -> &str {
        self.addr.rsplit_once(':').unwrap().1
    }

    /// The value of the sample `series` in a scrape of `GET /metrics`.
    fn metric(&self, series: &str) -> f64 {
        scrape(&self.metrics, series)
    }
}

/// The value of the sample `series` in a scrape of `GET /metrics` at
/// `metrics` (`host:port`); 0 when it is not there yet.
fn scrape(metrics: &str, series: &str) -> f64 {
    let mut stream = TcpStream::connect(metrics).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text.lines()
        .filter_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .find_map(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The line after "listening on": the metrics address (`host:port`).
fn metrics_address(line: &str) -> String {
    line.trim()
        .strip_prefix("metrics on http://")
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("no metrics address in {line:?}"))
        .to_owned()
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A load balancer process of the test's own, in a temporary directory.
struct Balancer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Balancer {
    /// HAProxy, round robin over `backends`, PROXY v2, TCP health checks on
    /// the traffic port every 100 ms.
    fn haproxy(backends: &[&Instance]) -> Balancer {
        let addrs: Vec<String> = backends.iter().map(|b| b.addr.clone()).collect();
        Balancer::haproxy_over(&addrs)
    }

    /// HAProxy as [`Balancer::haproxy`], over backends given by address.
    fn haproxy_over(addrs: &[String]) -> Balancer {
        let port = free_port();
        let servers: String = addrs
            .iter()
            .enumerate()
            .map(|(i, addr)| {
                format!("    server s{i} {addr} send-proxy-v2 check inter 100ms fall 2 rise 2\n")
            })
            .collect();
        let config = format!(
            "global\n    maxconn 1000\n\
             defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n    \
             retries 3\n    option redispatch\n\
             frontend front\n    bind 127.0.0.1:{port}\n    default_backend servers\n\
             backend servers\n    balance roundrobin\n{servers}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("haproxy is installed (scripts/test-deps.sh)");
        Balancer::ready(child, port, dir)
    }

    /// nginx's stream module, round robin over `backends`, PROXY v1.
    fn nginx(backends: &[&Instance]) -> Balancer {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let servers: String = backends
            .iter()
            .map(|b| format!("        server {};\n", b.addr))
            .collect();
        let module = Path::new("/usr/lib/nginx/modules/ngx_stream_module.so");
        let load = if module.exists() {
            format!("load_module {};\n", module.display())
        } else {
            String::new()
        };
        let d = dir.path().display();
        let config = format!(
            "{load}daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
             events {{ worker_connections 256; }}\n\
             stream {{\n    upstream servers {{\n{servers}    }}\n    \
             server {{\n        listen 127.0.0.1:{port};\n        proxy_pass servers;\n        proxy_protocol on;\n    }}\n}}\n"
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, config).unwrap();
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx is installed (scripts/test-deps.sh)");
        Balancer::ready(child, port, dir)
    }

    /// Waits until the balancer listens (seen in /proc/net/tcp: a test
    /// connection would be relayed to a server, and count as a session).
    fn ready(mut child: Child, port: u16, dir: tempfile::TempDir) -> Balancer {
        let deadline = Instant::now() + PATIENCE;
        let listening = format!("0100007F:{port:04X} 00000000:0000 0A");
        while !std::fs::read_to_string("/proc/net/tcp")
            .unwrap_or_default()
            .contains(&listening)
        {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the balancer exited with {status}");
            }
            assert!(Instant::now() < deadline, "the balancer did not listen");
            std::thread::sleep(Duration::from_millis(10));
        }
        Balancer {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A JSON packet, framed with the default header (4 bytes, big endian).
fn frame(payload: &Value) -> Vec<u8> {
    let body = payload.to_string();
    let mut frame = ((body.len() + 2) as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&[22, 0]);
    frame.extend_from_slice(body.as_bytes());
    frame
}

/// The next reply on `stream`, `None` when it closed.
fn read_reply(stream: &mut TcpStream) -> Option<Value> {
    let mut head = [0u8; 6];
    stream.read_exact(&mut head).ok()?;
    let len = u32::from_be_bytes(head[..4].try_into().unwrap()) as usize;
    let mut body = vec![0u8; len - 2];
    stream.read_exact(&mut body).unwrap();
    Some(serde_json::from_slice(&body).unwrap())
}

/// A session through the balancer: connected, one echo answered; or the
/// failure code it was refused with.
fn session(port: u16) -> Result<TcpStream, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let hello = json!({"hello": 1});
    stream.write_all(&frame(&hello)).unwrap();
    match read_reply(&mut stream) {
        Some(reply) if reply == hello => Ok(stream),
        Some(reply) => Err(reply["error"].as_str().unwrap_or("?").to_owned()),
        None => Err("closed".to_owned()),
    }
}

/// Fires `n` pipelined echoes on `stream`: (echoes, ERR_RATE_LIMITED).
fn fire(mut stream: TcpStream, n: usize) -> (usize, usize) {
    let frames: Vec<u8> = (0..n).flat_map(|i| frame(&json!({"n": i}))).collect();
    stream.write_all(&frames).unwrap();
    let (mut echoed, mut limited) = (0, 0);
    for _ in 0..n {
        let reply = read_reply(&mut stream).expect("a reply");
        match reply["error"].as_str() {
            Some("ERR_RATE_LIMITED") => limited += 1,
            Some(other) => panic!("unexpected {other}"),
            None => echoed += 1,
        }
    }
    (echoed, limited)
}

/// Until `deadline`: a session that gets in.
fn session_within(port: u16, within: Duration) -> TcpStream {
    let deadline = Instant::now() + within;
    loop {
        match session(port) {
            Ok(stream) => return stream,
            Err(code) => assert!(Instant::now() < deadline, "still refused: {code}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Two instances with `session_limit = 2` behind the balancer on `port`:
/// two sessions get in, a third is refused by either instance (round robin:
/// try both), and a slot freed by closing the first is usable within 2 s.
/// Returns the sessions held.
fn session_limit_holds_across_instances(port: u16) -> [TcpStream; 2] {
    let first = session(port).unwrap();
    let second = session(port).unwrap();
    for _ in 0..2 {
        assert_eq!(
            session(port).err().as_deref(),
            Some("ERR_SESSION_LIMIT_REACHED")
        );
    }
    drop(first);
    let freed = Instant::now();
    let third = session_within(port, Duration::from_secs(2));
    assert!(freed.elapsed() < Duration::from_secs(2));
    [second, third]
}

/// The issue's check: two instances behind HAProxy (PROXY v2, round robin)
/// share one Redis; `session_limit = 2` holds across them, a freed slot is
/// usable within 2 s, and the metrics show it; the client address is the
/// one seen through the proxy; health checks are not logged as failures.
#[test]
fn haproxy_session_limit_across_instances_metrics_and_health_checks() {
    let redis = RedisServer::start();
    let mut a = Instance::start(&redis, &["--session-limit", "2"]);
    let b = Instance::start(&redis, &["--session-limit", "2"]);
    let haproxy = Balancer::haproxy(&[&a, &b]);
    let _held = session_limit_holds_across_instances(haproxy.port);

    let requests: f64 = [&a, &b]
        .iter()
        .map(|i| i.metric(r#"asyncapy_requests_total{handler="echo",outcome="ok"}"#))
        .sum();
    assert!(requests >= 3.0, "{requests} requests counted");
    let refused: f64 = [&a, &b]
        .iter()
        .map(|i| i.metric(r#"asyncapy_refused_total{reason="session_limit"}"#))
        .sum();
    assert!(refused >= 2.0, "{refused} session_limit refusals counted");

    // The client seen through the proxy is the test's own address.
    let line = a
        .log
        .wait_for("a proxied session", |l| l.contains("New session started"));
    assert!(
        line.contains("from 127.0.0.1:") && line.contains("through the proxy at 127.0.0.1:"),
        "{line}"
    );
    // Health checks (every 100 ms) have come and gone, and none is a failure.
    let checks_seen = Instant::now();
    while checks_seen.elapsed() < Duration::from_millis(500) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(a.metric(r#"asyncapy_refused_total{reason="proxy"}"#), 0.0);
    assert!(
        a.metric("asyncapy_connections_total") >= 5.0,
        "health checks reach the server"
    );
    drop(haproxy);
    support::signal(a.child.id(), "TERM");
    let lines = a.log.until_end();
    let failures: Vec<&String> = lines
        .iter()
        .filter(|l| {
            l.contains("PROXY header")
                || l.contains("[ERROR]")
                || l.contains("[WARNING]") && !l.contains("Session limit")
        })
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn haproxy_rate_limit_across_instances() {
    let redis = RedisServer::start();
    let a = Instance::start(&redis, &["--rate-limit", "20/1"]);
    let b = Instance::start(&redis, &["--rate-limit", "20/1"]);
    let haproxy = Balancer::haproxy(&[&a, &b]);
    let streams: Vec<TcpStream> = (0..4)
        .map(|_| {
            let stream = TcpStream::connect(("127.0.0.1", haproxy.port)).unwrap();
            stream.set_read_timeout(Some(PATIENCE)).unwrap();
            stream
        })
        .collect();
    let fired: Vec<_> = streams
        .into_iter()
        .map(|stream| std::thread::spawn(move || fire(stream, 30)))
        .collect();
    let (mut echoed, mut limited) = (0, 0);
    for thread in fired {
        let (e, l) = thread.join().unwrap();
        echoed += e;
        limited += l;
    }
    assert!(echoed <= 35, "{echoed} echoes");
    assert!(limited >= 1, "{limited} refusals");
    let counted: f64 = [&a, &b]
        .iter()
        .map(|i| i.metric(r#"asyncapy_refused_total{reason="rate_limited"}"#))
        .sum();
    assert_eq!(counted as usize, limited);
}

#[test]
fn haproxy_takes_a_killed_instance_out_and_redis_can_restart_under_load() {
    let mut redis = RedisServer::start();
    let mut a = Instance::start(&redis, &["--session-limit", "50"]);
    let b = Instance::start(&redis, &["--session-limit", "50"]);
    let haproxy = Balancer::haproxy(&[&a, &b]);
    for _ in 0..4 {
        drop(session(haproxy.port).unwrap());
    }
    // A dies without cleaning up: every new session is served by B.
    let _ = a.child.kill();
    let _ = a.child.wait();
    for _ in 0..20 {
        let mut stream = session_within(haproxy.port, Duration::from_secs(2));
        let (echoed, _) = {
            let probe = json!({"again": true});
            stream.write_all(&frame(&probe)).unwrap();
            (read_reply(&mut stream) == Some(probe), ())
        };
        assert!(echoed);
    }
    // Redis stops under load, and comes back: sessions go on (limits_fail =
    // open), and the limit holds again afterwards.
    let load = std::thread::spawn({
        let port = haproxy.port;
        move || {
            let mut served = 0;
            let until = Instant::now() + Duration::from_millis(1500);
            while Instant::now() < until {
                if let Ok(stream) = session(port) {
                    served += 1;
                    drop(stream);
                }
            }
            served
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    redis.stop();
    std::thread::sleep(Duration::from_millis(500));
    redis.restart();
    let served = load.join().unwrap();
    assert!(served > 0);
    assert!(b.metric("asyncapy_limits_store_errors_total") >= 1.0);
    let held: Vec<TcpStream> = (0..50)
        .map(|_| session_within(haproxy.port, Duration::from_secs(5)))
        .collect();
    assert_eq!(
        session(haproxy.port).err().as_deref(),
        Some("ERR_SESSION_LIMIT_REACHED")
    );
    drop(held);
}

#[test]
fn nginx_proxy_protocol_v1_and_shared_session_limit() {
    let redis = RedisServer::start();
    let mut a = Instance::start(&redis, &["--session-limit", "2"]);
    let b = Instance::start(&redis, &["--session-limit", "2"]);
    let nginx = Balancer::nginx(&[&a, &b]);
    let _held = session_limit_holds_across_instances(nginx.port);
    let line = a
        .log
        .wait_for("a proxied session", |l| l.contains("New session started"));
    assert!(
        line.contains("from 127.0.0.1:") && line.contains("through the proxy"),
        "{line}"
    );
    assert!(a.port() != b.port());
}

/// `asyncapy serve` on `port` with `reuse_port`, behind the proxy, sharing
/// `redis`; returned once it listens, with its metrics address.
fn serve_on(port: u16, redis: &RedisServer) -> (Child, String) {
    let mut child = support::asyncapy()
        .args(["serve", "--port", &port.to_string(), "--reuse-port"])
        .args(["--proxy-protocol", "--proxy-trusted", "127.0.0.1"])
        .args(["--limits-store", &redis.url(), "--session-limit", "100"])
        .args(["--grace-period", "5", "--metrics-addr", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = Lines::read(child.stdout.take().unwrap());
    stdout.wait_for("listening on", |l| l.starts_with("listening on"));
    // The rest of stdout is drained by the reading thread.
    let metrics = stdout.wait_for("the metrics address", |l| l.starts_with("metrics on "));
    (child, metrics_address(&metrics))
}

/// A rolling restart of every instance behind HAProxy, each replaced by a
/// new process on its port (`reuse_port`) before it drains on SIGTERM, under
/// the load of `asyncapy bench --resend` (which sends again what a
/// restarting server answers `ERR_SHUTTING_DOWN` or drops): every request is
/// answered, and answered right (bench checks each echo), and the restarts
/// did hit the run (each old instance answered requests before it was
/// replaced, the new ones after).
#[test]
fn haproxy_rolling_restart_loses_no_request() {
    let redis = RedisServer::start();
    let ports = [free_port(), free_port()];
    let mut instances: Vec<(Child, String)> =
        ports.iter().map(|port| serve_on(*port, &redis)).collect();
    let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let haproxy = Balancer::haproxy_over(&addrs);
    let answered = r#"asyncapy_requests_total{handler="echo",outcome="ok"}"#;

    let bench = support::asyncapy()
        .args([
            "bench",
            "--host",
            "127.0.0.1",
            "--port",
            &haproxy.port.to_string(),
        ])
        .args([
            "--resend",
            "-c",
            "4",
            "-d",
            "10s",
            "--warmup",
            "0",
            "--threads",
            "1",
        ])
        .args(["--json", "--no-progress"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for (i, port) in ports.iter().enumerate() {
        // Only once the load's requests reach this instance (round robin: 2
        // of the 4 connections) is it replaced: a session that is open but
        // has not sent yet would be closed before it was used.
        let deadline = Instant::now() + PATIENCE;
        while scrape(&instances[i].1, answered) < 100.0 {
            assert!(
                Instant::now() < deadline,
                "the load did not reach instance {i}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let new = serve_on(*port, &redis);
        let (mut old, _) = std::mem::replace(&mut instances[i], new);
        assert!(support::signal(old.id(), "TERM"));
        let _ = old.wait();
    }
    // The run is 10 s; its report comes within 30.
    let (pid, (tx, rx)) = (bench.id(), std::sync::mpsc::channel());
    std::thread::spawn(move || {
        let _ = tx.send(bench.wait_with_output());
    });
    let Ok(output) = rx.recv_timeout(Duration::from_secs(30)) else {
        support::kill(pid);
        panic!("asyncapy bench did not end within 30 s");
    };
    let output = output.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}): {stdout:?}, stderr {:?}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert!(output.status.success(), "{report}");
    assert_eq!(report["errors"]["total"], 0, "{report}");
    assert!(report["requests"].as_u64().unwrap_or(0) > 100, "{report}");
    // The restarts were in the run: each old instance answered part of the
    // load before it was replaced (above), and the new ones answered the
    // rest. Whether anything had to be sent again depends on where each
    // session was when its instance drained (a session closed between two
    // requests reconnects with nothing to resend), so it is only printed.
    let moved: f64 = instances.iter().map(|(_, m)| scrape(m, answered)).sum();
    assert!(moved > 0.0, "the new instances answered nothing: {report}");
    println!(
        "{} requests answered, resent {}",
        report["requests"], report["resent"]
    );
    drop(haproxy);
    for (mut child, _) in instances {
        let _ = child.kill();
        let _ = child.wait();
    }
}
