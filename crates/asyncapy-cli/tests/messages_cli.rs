//! The command's messages as a user meets them: each error on one line,
//! naming what is wrong once (the option, the file, the cause), and the
//! help listing every command.

#![allow(clippy::unwrap_used)] // tests: a panic is a failure with its message

mod support;

use std::net::{TcpListener, ToSocketAddrs as _};
use std::path::{Path, PathBuf};

use support::{asyncapy, run_bounded};

/// Runs `asyncapy ARGS`, expects exit 1 with nothing on stdout, and returns
/// its stderr.
fn fails(args: &[&str]) -> String {
    let output = run_bounded(asyncapy().args(args));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(
        output.stdout.is_empty(),
        "{args:?}: stdout {:?}",
        output.stdout
    );
    stderr
}

/// An INI file `name` holding `text`, in `dir`.
fn ini(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_missing_config_file_names_the_file_and_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.ini");
    let cause = std::fs::read(&path).unwrap_err().to_string();
    let stderr = fails(&["serve", "--config", path.to_str().unwrap()]);
    assert_eq!(
        stderr,
        format!("asyncapy: error: cannot read {}: {cause}\n", path.display())
    );
}

#[test]
fn an_unresolvable_address_names_the_resolver_error_once() {
    let cause = ("999.1.1.1", 0).to_socket_addrs().unwrap_err().to_string();
    let stderr = fails(&["serve", "--addr", "999.1.1.1", "--port", "0"]);
    assert_eq!(
        stderr,
        format!("asyncapy: error: cannot resolve address 999.1.1.1:0: {cause}\n")
    );
}

#[test]
fn a_port_in_use_names_the_system_error_once() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let cause = TcpListener::bind(addr).unwrap_err().to_string();
    let stderr = fails(&["serve", "--port", &addr.port().to_string()]);
    assert_eq!(
        stderr,
        format!("asyncapy: error: cannot listen on {addr}: {cause}\n")
    );
}

#[test]
fn an_ini_interpolation_error_names_the_file_and_the_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = ini(
        dir.path(),
        "percent.ini",
        "[AsyncAPY]\nconsole_format = 50% done\n",
    );
    let stderr = fails(&["serve", "--config", path.to_str().unwrap()]);
    assert_eq!(
        stderr,
        format!(
            "asyncapy: error: {}: [AsyncAPY] console_format: '%' must be followed by '%' or \
             '(name)s' (write %% for a literal %)\n",
            path.display()
        )
    );
}

#[test]
fn an_ini_syntax_error_names_the_file_and_the_line_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = ini(dir.path(), "twice.ini", "[AsyncAPY]\nport = 1\nport = 2\n");
    let stderr = fails(&["serve", "--config", path.to_str().unwrap()]);
    assert_eq!(
        stderr,
        format!(
            "asyncapy: error: {}: line 3: key 'port' appears twice in [AsyncAPY]\n",
            path.display()
        )
    );
}

#[test]
fn a_bad_flag_value_names_the_flag_once() {
    let stderr = fails(&["serve", "--port", "abc"]);
    assert_eq!(
        stderr,
        "asyncapy: error: --port: invalid value \"abc\": must be a port number from 0 to 65535\n"
    );
    let stderr = fails(&["serve", "--session-limit", "many", "--port", "0"]);
    assert_eq!(
        stderr,
        "asyncapy: error: --session-limit: invalid value \"many\": must be a number of sessions \
         (0 for no limit)\n"
    );
}

#[test]
fn a_bad_value_in_an_ini_file_names_the_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = ini(dir.path(), "port.ini", "[AsyncAPY]\nport = abc\n");
    let stderr = fails(&["serve", "--config", path.to_str().unwrap()]);
    assert_eq!(
        stderr,
        format!(
            "asyncapy: error: {}: port: invalid value \"abc\": must be a port number from 0 to \
             65535\n",
            path.display()
        )
    );
    assert_eq!(stderr.matches(path.to_str().unwrap()).count(), 1);
}

#[test]
fn a_bad_console_format_keeps_the_formatters_detail() {
    let stderr = fails(&["serve", "--console-format", "%(nosuch)s", "--port", "0"]);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(
            "asyncapy: error: console_format: invalid value \"%(nosuch)s\": must be a Python \
             logging format (%(levelname)s, %(asctime)s, %(message)s...): "
        ),
        "{stderr}"
    );
    assert!(
        stderr.ends_with("unknown attribute %(nosuch)\n"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("unknown attribute").count(), 1, "{stderr}");
    assert_eq!(
        stderr.matches("console_format").count(),
        1,
        "the key once: {stderr}"
    );
}

#[test]
fn a_key_store_without_a_scheme_is_named_with_the_fix() {
    let stderr = fails(&["keys", "--store", "/var/lib/keys.db", "list"]);
    assert_eq!(
        stderr,
        "asyncapy: error: key store \"/var/lib/keys.db\" has no scheme: write \
         sqlite:/var/lib/keys.db for an SQLite file, or redis://HOST[:PORT][/DB] for a Redis\n"
    );
    let stderr = fails(&["keys", "--store", "", "list"]);
    assert_eq!(
        stderr,
        "asyncapy: error: no key store given: --keys takes sqlite:PATH or \
         redis://HOST[:PORT][/DB]\n"
    );
    // A scheme is still shown alone (the rest may hold a password).
    let stderr = fails(&["keys", "--store", "postgres://u:secret@db/k", "list"]);
    assert_eq!(
        stderr,
        "asyncapy: error: unknown key store \"postgres\": --keys takes sqlite:PATH or \
         redis://HOST[:PORT][/DB]\n"
    );
}

#[test]
fn the_help_lists_every_command() {
    let output = run_bounded(asyncapy().arg("--help"));
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        help.lines().next(),
        Some("The asyncapy command: serve, send, keys and bench"),
        "{help}"
    );
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| !line.is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert_eq!(
        commands,
        ["serve", "send", "keys", "bench", "help"],
        "{help}"
    );
}
