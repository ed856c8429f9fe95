#!/usr/bin/env bash
# Builds the Python package (python/, maturin: the PyO3 module asyncapy._engine
# under the pure-Python asyncapy package), installs it into the test
# virtualenv that scripts/test-deps.sh made, and runs its pytest suite
# (python/tests) over real sockets. Run from anywhere; extra arguments go to
# pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-$PWD/target}"
venv="$target/venv-py"
if [ ! -x "$venv/bin/python" ]; then
    echo "test-python: no virtualenv at $venv: run scripts/test-deps.sh first" >&2
    exit 1
fi
export CARGO_TARGET_DIR="$target"
# maturin (the build backend) runs from the virtualenv.
export PATH="$venv/bin:$PATH"
# A dev-profile build: the suite tests behaviour, and this keeps CI fast.
MATURIN_PEP517_ARGS="--profile dev" \
    "$venv/bin/python" -m pip install -q --no-build-isolation --force-reinstall --no-deps ./python
# From the repository root, so python/asyncapy (without its native module)
# does not shadow the installed package.
"$venv/bin/python" -m pytest python/tests -q -p no:cacheprovider "$@"
