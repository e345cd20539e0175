#!/usr/bin/env python3
"""Checks the library's module layers (see ARCHITECTURE.md).

Reads every `crate::…` path in src/ (the binaries aside), at the granularity of the
top-level modules, and fails when:
- a module imports a module of its own layer or a higher one (this also rules out
  every import circle), or a module that is in no layer;
- a command module imports another command module.

Usage: scripts/check-layers.py [--edges]   (--edges prints the graph it read)
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC = ROOT / "src"

# Each module may import only modules of strictly lower layers.
LAYERS = [
    ["model"],
    ["aws", "decode", "route"],
    ["buffer", "schema"],
    ["encode"],
    ["archive", "sink"],
    ["report", "settings"],
    ["pipeline"],
    ["lambda", "replay", "compact", "verify", "restore", "infer", "baseline", "coverage"],
    ["maintenance"],
]
COMMANDS = {"replay", "compact", "verify", "restore", "infer", "baseline", "coverage"}

RANK = {m: i for i, layer in enumerate(LAYERS) for m in layer}


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    out = []
    for line in text.splitlines():
        # Drop // comments (doc comments included) outside of string literals; good enough
        # for import paths, which never hold "//".
        i = line.find("//")
        out.append(line if i < 0 else line[:i])
    return "\n".join(out)


def use_targets(tree):
    """First path segments of a `use crate::` tree: `{a::x, b::{y, z}}` -> [a, b]."""
    tree = tree.strip()
    if not tree.startswith("{"):
        return [re.match(r"[A-Za-z_][A-Za-z0-9_]*", tree).group(0)]
    names, depth, item = [], 0, ""
    for ch in tree[1:-1] + ",":
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            if item.strip():
                names.append(re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)", item).group(1))
            item = ""
        else:
            item += ch
    return names


def module_of(path):
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".rs")


def edges():
    found = {}
    for path in sorted(SRC.rglob("*.rs")):
        rel = path.relative_to(SRC)
        if rel.parts[0] in ("bin", "lib.rs"):
            continue
        here = module_of(path)
        text = strip_comments(path.read_text())
        targets = []
        for m in re.finditer(r"\buse\s+crate::(\{.*?\}|[A-Za-z_][A-Za-z0-9_]*)\s*(?:::|;|\s+as\b)", text, flags=re.S):
            body = m.group(1)
            if body.startswith("{"):
                # Find the matching brace from the start of the group.
                start = m.start(1)
                depth = 0
                for j in range(start, len(text)):
                    if text[j] == "{":
                        depth += 1
                    elif text[j] == "}":
                        depth -= 1
                        if depth == 0:
                            body = text[start:j + 1]
                            break
            targets += use_targets(body)
        targets += re.findall(r"(?<![A-Za-z0-9_:])crate::([a-z_][a-z0-9_]*)::", text)
        for t in targets:
            if t != here:
                found.setdefault((here, t), set()).add(str(rel))
    return found


def main():
    problems = []
    graph = edges()
    if "--edges" in sys.argv:
        for (a, b), files in sorted(graph.items()):
            print(f"{a} -> {b}: {', '.join(sorted(files))}")
    modules = {module_of(p) for p in SRC.iterdir() if p.name not in ("bin", "lib.rs")}
    for m in sorted(modules - set(RANK)):
        problems.append(f"module `{m}` is in no layer: add it to LAYERS in {pathlib.Path(__file__).name} and to ARCHITECTURE.md")
    for (a, b), files in sorted(graph.items()):
        where = ", ".join(sorted(files))
        if a in COMMANDS and b in COMMANDS:
            problems.append(f"command `{a}` imports command `{b}` ({where}); commands are siblings: move what they share to a lower layer")
        elif a in RANK and b in RANK and RANK[b] >= RANK[a]:
            problems.append(f"`{a}` (layer {RANK[a]}) imports `{b}` (layer {RANK[b]}) ({where}); a module imports only lower layers")
    for p in problems:
        print(f"layers: {p}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"layers: {len(modules)} modules, {len(graph)} imports, no circles, no command imports another")


if __name__ == "__main__":
    main()
