#!/usr/bin/env bash
# Installs what the test suite needs besides a Rust toolchain, when missing:
#   - the Python packages of requirements-test.txt (ziproto, the ZiProto codec
#     the original uses, and msgpack): the payload codecs' cross-checks, and
#     the Python client and server written from the original's documentation
#     (tests/python_interop.rs). The original AsyncAPY itself is not installed:
#     tests/original_vectors.rs replays wire bytes recorded from it (commit
#     ce315f2), committed in crates/asyncapy/tests/vectors/ and re-recorded by
#     hand with scripts/record-original-vectors.py;
#   - a virtualenv for the Python package's tests (${CARGO_TARGET_DIR:-target}/venv-py)
#     with python/requirements-test.txt (maturin, trio, ziproto, pytest), which
#     scripts/test-python.sh builds the package into and runs pytest with;
#   - redis-server (Debian package): the Redis key store tests start their own
#     on a free loopback port, and fail, saying so, without it.
#   - haproxy and nginx with its stream module (Debian packages): the
#     load-balancer tests (tests/balancers.rs of asyncapy-cli) start their own
#     in front of `asyncapy serve` instances, on free loopback ports.
# Idempotent: cheap when everything is there. Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install -q -r requirements-test.txt

venv="${CARGO_TARGET_DIR:-$PWD/target}/venv-py"
if [ ! -x "$venv/bin/python" ]; then
    mkdir -p "$(dirname "$venv")"
    if ! python3 -m venv "$venv" 2>/dev/null; then
        # Debian and Ubuntu ship venv apart (python3-venv).
        rm -rf "$venv"
        if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "test-deps: installing python3-venv (apt-get)" >&2
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
            python3 -m venv "$venv"
        else
            echo "test-deps: python3 -m venv failed; install python3-venv" >&2
            exit 1
        fi
    fi
fi
"$venv/bin/python" -m pip install -q -r python/requirements-test.txt

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    missing+=(nginx)
fi
if [ ! -e /usr/lib/nginx/modules/ngx_stream_module.so ] && ! nginx -V 2>&1 | grep -q -- '--with-stream[^=_]' ; then
    missing+=(libnginx-mod-stream)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        echo "test-deps: ${missing[*]} missing; as root: apt-get install ${missing[*]}" >&2
        exit 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "test-deps: ${missing[*]} missing and there is no apt-get: install them with your package manager" >&2
        exit 1
    fi
    echo "test-deps: installing ${missing[*]} (apt-get)" >&2
    "${as_root[@]}" apt-get update -qq
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    command -v redis-server >/dev/null
fi
