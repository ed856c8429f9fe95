//! AsyncAPY for Rust.
