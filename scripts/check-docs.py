#!/usr/bin/env python3
"""Checks the documentation against itself and against the CLI.

1. Every relative Markdown link in README.md, ARCHITECTURE.md and docs/**/*.md resolves:
   `[text](path)`, `[text](path#anchor)`, `[text](#anchor)` and `[label]: path` definitions.
   The path must exist relative to the linking file; an anchor into a Markdown file must
   match one of its headings under GitHub's slug rules (lowercase, punctuation other
   than `-` and `_` removed, spaces to hyphens, repeats suffixed -1, -2, ...) or an
   explicit `<a name="...">`/`id="..."`. http(s), mailto and other scheme links are
   skipped, and so is anything inside fenced code blocks or inline code.

2. With `--bin PATH`: for every subcommand that `PATH --help` lists (recursing into
   subcommands that list their own, such as `schema ddl`), every long flag defined in
   `PATH <sub...> --help` must appear on the command's page, docs/<first word>.md
   (`--help` and `--version` aside).

Prints every problem with its file (and line, for links) and exits 1 if there is any;
prints a one-line summary and exits 0 otherwise. Python 3 standard library only.

    python3 scripts/check-docs.py [--bin target/debug/ddb-archiver] [--root DIR]
"""

import argparse
import os
import re
import subprocess
import sys
import urllib.parse
from pathlib import Path

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*$")
SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
HTML_ANCHOR = re.compile(r"""<a\s[^>]*?\b(?:name|id)\s*=\s*["']([^"']+)["']""", re.I)
# [text](target) or ![alt](target); the text may hold one level of brackets.
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^()\s]*(?:\([^()\s]*\)[^()\s]*)*)(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)")
REF_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
IGNORED_FLAGS = {"--help", "--version"}


def strip_inline_code(line):
    """The line with every inline code span blanked (same length, so columns hold)."""
    out, i = [], 0
    while i < len(line):
        if line[i] == "`":
            j = i
            while j < len(line) and line[j] == "`":
                j += 1
            ticks = line[i:j]
            end = line.find(ticks, j)
            while end != -1 and end + len(ticks) < len(line) and line[end + len(ticks)] == "`":
                end = line.find(ticks, end + len(ticks) + 1)
            if end == -1:
                out.append(ticks)  # an unmatched run is literal text
                i = j
                continue
            out.append(" " * (end + len(ticks) - i))
            i = end + len(ticks)
        else:
            out.append(line[i])
            i += 1
    return "".join(out)


def prose_lines(text):
    """(line number, line) for every line outside fenced code blocks."""
    fence = None
    for number, line in enumerate(text.split("\n"), 1):
        m = FENCE.match(line)
        if fence is None:
            if m:
                fence = m.group(1)
                continue
            yield number, line
        elif m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) \
                and line.strip() == m.group(1):
            fence = None


def heading_text(raw):
    """The rendered text of a heading's Markdown, roughly as GitHub renders it."""
    text = re.sub(r"[ \t]+#+$", "", raw.strip())  # closing hashes
    text = re.sub(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\([^)]*\)", r"\1", text)  # links
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML tags
    return text.replace("`", "")


def slug(text):
    """GitHub's anchor for a heading's rendered text (before duplicates are numbered)."""
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)  # \w keeps letters, digits and _
    return text.replace(" ", "-")


_anchor_cache = {}


def anchors(path):
    """Every anchor a Markdown file defines: heading slugs (numbered) and HTML anchors."""
    if path in _anchor_cache:
        return _anchor_cache[path]
    found, seen = set(), {}
    previous = None
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        for m in HTML_ANCHOR.finditer(line):
            found.add(m.group(1))
        title = None
        m = ATX.match(line)
        if m:
            title = m.group(2) or ""
        elif previous is not None and previous.strip() and SETEXT.match(line) \
                and not ATX.match(previous) and not previous.startswith((" " * 4, "\t")):
            title = previous
        previous = line
        if title is None:
            continue
        base = slug(heading_text(title))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    _anchor_cache[path] = found
    return found


def link_targets(line):
    """The targets of the links on a line of prose (inline code already blanked)."""
    targets = [m.group(1) for m in INLINE_LINK.finditer(line)]
    m = REF_DEF.match(line)
    if m:
        targets.append(m.group(1))
    return [t[1:-1] if t.startswith("<") and t.endswith(">") else t for t in targets]


def check_links(root, files):
    problems, links, anchored = [], 0, 0
    for md in files:
        rel = md.relative_to(root)
        for number, line in prose_lines(md.read_text(encoding="utf-8")):
            for target in link_targets(strip_inline_code(line)):
                if not target or SCHEME.match(target) or target.startswith("//"):
                    continue  # http(s), mailto, other schemes, protocol-relative
                links += 1
                path_part, _, anchor = target.partition("#")
                path_part = urllib.parse.unquote(path_part.split("?", 1)[0])
                anchor = urllib.parse.unquote(anchor)
                if path_part.startswith("/"):
                    dest = root / path_part.lstrip("/")
                else:
                    dest = (md.parent / path_part) if path_part else md
                dest = Path(os.path.normpath(dest))
                if not dest.exists():
                    problems.append(f"{rel}:{number}: link to {target}: {path_part} does not exist")
                    continue
                if not anchor:
                    continue
                anchored += 1
                if dest.is_dir():
                    dest = dest / "README.md"
                    if not dest.exists():
                        problems.append(f"{rel}:{number}: link to {target}: a directory has no anchors")
                        continue
                if dest.suffix.lower() not in (".md", ".markdown"):
                    continue  # anchors into code files (#L10) are GitHub's, not checked
                if anchor not in anchors(dest):
                    where = dest.relative_to(root) if dest.is_relative_to(root) else dest
                    problems.append(f"{rel}:{number}: link to {target}: no heading in {where} "
                                    f"has the anchor #{anchor}")
    return problems, links, anchored


def run_help(binary, words):
    env = dict(os.environ, NO_COLOR="1", TERM="dumb", COLUMNS="200")
    proc = subprocess.run([binary, *words, "--help"], capture_output=True, text=True,
                          env=env, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"`{' '.join([binary, *words, '--help'])}` exited with "
                           f"{proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def help_sections(text):
    """{section title: [lines]} of a clap help text ("Commands:", "Options:", ...)."""
    sections, current = {}, None
    for line in text.split("\n"):
        m = re.match(r"^([A-Z][A-Za-z ]*):\s*$", line)
        if m:
            current = m.group(1)
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    return sections


def subcommands(text):
    names = []
    for line in help_sections(text).get("Commands", []):
        m = re.match(r"^ {2}(\S+)", line)
        if m:
            name = m.group(1).rstrip(",")
            if name != "help":
                names.append(name)
    return names


def long_flags(text):
    """The long flags a help text defines (its option lines, in any section)."""
    flags = []
    for line in text.split("\n"):
        # clap's option lines: "  -h, --help" or "      --dest <DEST>"; descriptions are
        # indented further, so a flag named in a description is not taken for one.
        m = re.match(r"^  (?:-[A-Za-z0-9], |    )(--[A-Za-z0-9][A-Za-z0-9-]*)", line)
        if m and m.group(1) not in IGNORED_FLAGS and m.group(1) not in flags:
            flags.append(m.group(1))
    return flags


def check_flags(root, binary):
    problems, flag_count, commands = [], 0, []
    try:
        top = run_help(binary, [])
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as e:
        return [f"{binary}: cannot run --help: {e}"], 0, 0
    queue = [[name] for name in subcommands(top)]
    if not queue:
        problems.append(f"{binary}: `--help` lists no subcommands")
    while queue:
        words = queue.pop(0)
        commands.append(words)
        try:
            text = run_help(binary, words)
        except (OSError, RuntimeError, subprocess.TimeoutExpired) as e:
            problems.append(f"{binary}: {e}")
            continue
        queue.extend(words + [name] for name in subcommands(text))
        page = root / "docs" / f"{words[0]}.md"
        rel = page.relative_to(root)
        if not page.exists():
            problems.append(f"{rel}: missing: the page of `{' '.join(words)}`")
            continue
        doc = page.read_text(encoding="utf-8")
        for flag in long_flags(text):
            flag_count += 1
            if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", doc):
                problems.append(f"{rel}: {flag} of `{' '.join(words)}` (from --help) "
                                f"is not on the page")
    return problems, flag_count, len(commands)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", help="the ddb-archiver binary whose --help flags are checked")
    parser.add_argument("--root", default=str(Path(__file__).resolve().parent.parent),
                        help="the repository root (default: this script's parent's parent)")
    args = parser.parse_args()
    root = Path(args.root).resolve()

    files = [root / name for name in ("README.md", "ARCHITECTURE.md") if (root / name).exists()]
    files += sorted((root / "docs").rglob("*.md")) if (root / "docs").is_dir() else []
    problems, links, anchored = check_links(root, files)
    summary = f"{len(files)} files, {links} relative links ({anchored} with anchors) resolve"
    if args.bin:
        flag_problems, flags, commands = check_flags(root, args.bin)
        problems += flag_problems
        summary += f"; {flags} flags of {commands} subcommands are on their pages"

    for problem in problems:
        print(problem)
    if problems:
        print(f"check-docs: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"check-docs: ok: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
