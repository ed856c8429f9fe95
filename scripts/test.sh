#!/usr/bin/env bash
# The whole test suite: what the README's second command runs, and CI with it.
#   1. scripts/test-deps.sh installs what the tests need (Python packages,
#      redis-server) when missing;
#   2. every crate with every feature;
#   3. the framework with no optional feature (no TLS, no key store backends),
#      so that code and tests under cfg(not(feature = ...)) run too.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/test-deps.sh
cargo test --workspace --all-features
cargo test -p asyncapy --no-default-features
