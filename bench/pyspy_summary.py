"""Summarise a py-spy ``--format raw`` profile (collapsed stacks): where the samples went.

Prints the share of samples per package (by the innermost frame: self time), the top functions by
self time, and the top emulator/library functions by inclusive time (on the stack at all). Used with
``throughput.py --py-spy PREFIX``; the figures in docs/performance.md come from it.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

from _harness import print_table

# Where a sample belongs: the first group whose function is on its stack (checked in this order).
GROUPS = (
    ("stream tasks (StreamSession.run)", "StreamSession.run"),
    ("webhook tasks", "emulator/webhooks/sender.py"),
    ("ASGI app: middleware, handler, response", "RequestResponseCycle.run_asgi"),
    ("HTTP parsing (uvicorn/h11 data_received)", "H11Protocol.data_received"),
    ("HTTP connections (uvicorn connection_made/lost)", "H11Protocol.connection_"),
)
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]*)(?::(?P<line>\d+))?\)$")


def parse(path: Path) -> list[tuple[list[tuple[str, str]], int]]:
    """[(frames outermost first as (function, file), samples)]."""
    stacks = []
    for raw in path.read_text().splitlines():
        stack, _, count = raw.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = []
        for frame in stack.split(";"):
            match = _FRAME.match(frame)
            frames.append((match["func"], match["file"]) if match else (frame, ""))
        stacks.append((frames, int(count)))
    return stacks


def package(file: str) -> str:
    if file.startswith("<"):
        return file
    first = file.split("/", 1)[0]
    return first.removesuffix(".py")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profile", type=Path, help="a py-spy --format raw output file")
    parser.add_argument("--top", type=int, default=15, help="rows per table (default 15)")
    args = parser.parse_args()
    stacks = parse(args.profile)
    total = sum(count for _frames, count in stacks)
    if not total:
        print(f"{args.profile}: no samples", file=sys.stderr)
        return 1
    by_group: Counter[str] = Counter()
    by_package: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, count in stacks:
        func, file = frames[-1]
        names = [f"{f} ({p})" for f, p in frames]
        group = next((g for g, marker in GROUPS if any(marker in n for n in names)), "event loop and the rest")
        by_group[group] += count
        by_package[package(file)] += count
        self_time[f"{func} ({file})"] += count
        for name in set(names):
            inclusive[name] += count

    def share(n: int) -> str:
        return f"{100 * n / total:5.1f} %"

    print(f"{args.profile}: {total} samples\n")
    print_table(("where (stack contains)", "samples"), [(name, share(n)) for name, n in by_group.most_common()])
    print()
    print_table(("package (self)", "samples"), [(name, share(n)) for name, n in by_package.most_common(args.top)])
    print()
    print_table(("function (self)", "samples"), [(name, share(n)) for name, n in self_time.most_common(args.top)])
    print()
    wanted = [
        (name, n)
        for name, n in inclusive.most_common()
        if "asyncio/" not in name and "runpy" not in name and "uvicorn/server.py" not in name
    ]
    print_table(("function (inclusive)", "samples"), [(name, share(n)) for name, n in wanted[: args.top * 2]])
    return 0


if __name__ == "__main__":
    sys.exit(main())
