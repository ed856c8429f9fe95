#!/usr/bin/env python3
"""Check the claimed minimum Rust version against what Cargo.lock needs.

The minimum a build needs is the highest `rust-version` declared by any
package the build compiles: every package in the resolve graph of
`cargo metadata --format-version 1 --all-features --locked` (every feature,
dev-dependencies, every target platform), the workspace's own packages aside.
Each workspace package that declares a `rust-version` claims that it builds
with that Rust; a claim below the minimum fails (exit 1) and the packages that
need more are named.

    scripts/check-msrv.py                               # the root workspace
    scripts/check-msrv.py --manifest-path fuzz/Cargo.toml

Only the version declared by dependencies is checked here: that our own code
needs no newer standard library than the claim is clippy's
`incompatible_msrv` lint (on in CI's clippy step).
"""

import argparse
import json
import subprocess
import sys


def parse_version(text):
    """'1.88' or '1.89.0' -> (1, 88, 0)."""
    parts = [int(p) for p in text.split("-")[0].split(".")]
    return tuple((parts + [0, 0, 0])[:3])


def show(version):
    major, minor, patch = version
    return f"{major}.{minor}" if patch == 0 else f"{major}.{minor}.{patch}"


def metadata(manifest_path):
    command = ["cargo", "metadata", "--format-version", "1", "--all-features", "--locked"]
    if manifest_path:
        command += ["--manifest-path", manifest_path]
    result = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    if result.returncode != 0:
        sys.exit(f"check-msrv: `{' '.join(command)}` failed (exit {result.returncode})")
    return json.loads(result.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest-path", help="Cargo.toml of the workspace to check")
    args = parser.parse_args()

    meta = metadata(args.manifest_path)
    resolve = meta.get("resolve")
    if not resolve:
        sys.exit("check-msrv: cargo metadata gave no resolve graph")
    in_graph = {node["id"] for node in resolve["nodes"]}
    members = set(meta["workspace_members"])

    claims = []  # (version, name) of workspace packages that declare one
    unclaimed = []  # workspace packages that declare none
    needs = []  # (version, name@version) of every other package in the graph
    for package in meta["packages"]:
        if package["id"] not in in_graph:
            continue
        declared = package.get("rust_version")
        if package["id"] in members:
            if declared:
                claims.append((parse_version(declared), package["name"]))
            else:
                unclaimed.append(package["name"])
        elif declared:
            needs.append((parse_version(declared), f"{package['name']} {package['version']}"))

    if not needs:
        print("check-msrv: no package in the graph declares a rust-version")
        return 0
    minimum = max(version for version, _ in needs)
    which = sorted(name for version, name in needs if version == minimum)
    print(f"minimum Rust version of the lock file: {show(minimum)} ({', '.join(which)})")
    for name in sorted(unclaimed):
        print(f"{name}: claims no rust-version")

    failed = False
    for claim, name in sorted(claims, key=lambda c: c[1]):
        short = sorted(
            (version, dep) for version, dep in needs if version > claim
        )
        if short:
            failed = True
            listed = ", ".join(f"{dep} (rust-version {show(version)})" for version, dep in short)
            print(f"FAIL {name} claims rust-version {show(claim)}, but these need more: {listed}")
        else:
            print(f"ok   {name} claims rust-version {show(claim)}")
    if failed:
        print(f"set rust-version to {show(minimum)} or more (or lock older dependencies)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
