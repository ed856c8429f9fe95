#!/usr/bin/env python3
"""Lists the dependency cycles between the top-level modules of a crate.

    scripts/check-module-cycles.py [CRATE_SRC_DIR ...]   (default: asyncaproto, asyncapy)

A module is a file or folder directly under `src/` (`src/server/` and
everything under it is the module `server`). Module A depends on module B when
a file of A names `crate::B` (in a `use`, a path or a doc-free expression).
Comments and string literals are ignored. Exit status 1 when a cycle exists,
with each cycle printed as `a -> b -> a` and the lines that make each edge.
"""

import re
import sys
from pathlib import Path

CRATES = ["crates/asyncaproto/src", "crates/asyncapy/src"]


def strip_comments_and_strings(text: str) -> str:
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'r#*"(?:.|\n)*?"#*', '""', text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    return text


def module_of(src: Path, file: Path) -> str:
    rel = file.relative_to(src)
    top = rel.parts[0]
    return top[:-3] if top.endswith(".rs") else top


def edges(src: Path):
    modules = {module_of(src, f) for f in src.rglob("*.rs")} - {"lib", "main"}
    found = {}
    for file in sorted(src.rglob("*.rs")):
        here = module_of(src, file)
        if here in ("lib", "main"):
            continue
        text = strip_comments_and_strings(file.read_text())
        # crate::a, and the grouped form crate::{a, b::c}
        names = re.findall(r"\bcrate::(\w+)", text)
        for group in re.findall(r"\bcrate::\{([^}]*)\}", text):
            names += re.findall(r"(?:^|,)\s*(\w+)", group)
        for name in names:
            if name in modules and name != here:
                found.setdefault((here, name), set()).add(str(file))
    return modules, found


def cycles(modules, found):
    graph = {m: sorted({b for (a, b) in found if a == m}) for m in modules}
    index, low, stack, on_stack, result = {}, {}, [], set(), []
    counter = [0]

    def connect(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for m in sorted(modules):
        if m not in index:
            connect(m)
    return result


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    crates = sys.argv[1:] or CRATES
    status = 0
    for crate in crates:
        src = (root / crate) if not Path(crate).is_absolute() else Path(crate)
        modules, found = edges(src)
        tangled = cycles(modules, found)
        if not tangled:
            print(f"{crate}: no module cycle ({len(modules)} modules)")
            continue
        status = 1
        for component in tangled:
            print(f"{crate}: modules depending on each other: {', '.join(component)}")
            for a in component:
                for b in component:
                    if (a, b) in found:
                        files = ", ".join(sorted(found[(a, b)]))
                        print(f"    {a} -> {b}  ({files})")
    return status


if __name__ == "__main__":
    sys.exit(main())
