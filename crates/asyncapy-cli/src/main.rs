//! The `asyncapy` command.
fn main() {}
