#!/usr/bin/env python3
"""The structure rules CI holds the code to; exit status 1 when any is broken.

    scripts/check-structure.py

1. No module cycle: runs scripts/check-module-cycles.py over every crate
   (asyncaproto, asyncapy, asyncapy-cli) and fails with what it prints.
2. No `too_many_arguments` allowance (`allow`, `expect` or `cfg_attr` naming
   the lint) anywhere under crates/: a function that wants one takes a struct.
3. No .rs file under crates/ (sources, tests, benches, examples) longer than
   1,000 lines: a longer one is split by concern.

Every broken rule is reported (not only the first), one line a finding.
"""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CRATES = ROOT / "crates"
MAX_LINES = 1000
CYCLE_CHECKED = ["crates/asyncaproto/src", "crates/asyncapy/src", "crates/asyncapy-cli/src"]
# An attribute (`#[...]` or `#![...]`) that names the lint.
ALLOWANCE = re.compile(r"#!?\[[^\]]*\btoo_many_arguments\b")


def rust_files():
    return sorted(
        p for p in CRATES.rglob("*.rs") if "target" not in p.relative_to(CRATES).parts
    )


def module_cycles():
    script = ROOT / "scripts" / "check-module-cycles.py"
    run = subprocess.run(
        [sys.executable, str(script), *CYCLE_CHECKED],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if run.returncode == 0:
        return []
    text = (run.stdout + run.stderr).strip()
    return [f"module cycles (scripts/check-module-cycles.py exit {run.returncode}):\n{text}"]


def allowances(files):
    found = []
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if ALLOWANCE.search(line):
                found.append(
                    f"{path.relative_to(ROOT)}:{number}: a too_many_arguments allowance: "
                    f"{line.strip()}"
                )
    return found


def long_files(files):
    found = []
    for path in files:
        lines = path.read_text(encoding="utf-8").count("\n")
        if lines > MAX_LINES:
            found.append(f"{path.relative_to(ROOT)}: {lines} lines (at most {MAX_LINES})")
    return found


def main():
    files = rust_files()
    findings = module_cycles() + allowances(files) + long_files(files)
    for finding in findings:
        print(finding)
    if findings:
        print(f"check-structure: {len(findings)} finding(s)")
        return 1
    print(f"check-structure: ok ({len(files)} .rs files under crates/)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
