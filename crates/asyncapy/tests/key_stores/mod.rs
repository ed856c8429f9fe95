//! Shared by the key store tests: the conformance suite every backend runs,
//! and a real `redis-server` for the Redis backend.
#![allow(dead_code, unreachable_pub)]

pub mod conformance;
pub mod redis_server;
