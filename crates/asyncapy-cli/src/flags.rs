//! Errors of command-line flags, shared by the subcommands that turn flags
//! into a server configuration (`serve`, and its TLS flags).

/// A flag's value the configuration refused, naming the flag once: the
/// library's message names the key (`port: invalid value "abc": ...`), which
/// becomes `--port: invalid value "abc": ...`.
pub(crate) fn flag_error(key: &str, error: &asyncapy::ConfigError) -> anyhow::Error {
    let flag = format!("--{}", key.replace('_', "-"));
    let text = error.to_string();
    let text = text
        .strip_prefix(key)
        .and_then(|rest| rest.strip_prefix(": "))
        .unwrap_or(&text);
    anyhow::anyhow!("{flag}: {text}")
}
