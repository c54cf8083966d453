#!/usr/bin/env python3
"""Peer linters against the same parse floor as scalelint, measured the same way.

Usage: python benchmarks/peers.py [--tier small] [--pairs 1] [--corpus DIR] [--bin DIR]

Runs fixit, pylint and semgrep (whichever are installed, on PATH or in --bin) on the
pinned corpus tier, each alternated with the floor (`parse_floor.py --mode libcst`,
one process), and prints the median ratio of their wall time to the floor's:

  fixit    `fixit lint` with its default rules (fixit spreads files over every core itself)
  pylint   `pylint --jobs 1` with its default checks
  semgrep  `semgrep scan -j 1` with ../shared/bench/semgrep-rules.yml (five scalelint-like
           rules), offline

Install them apart from scalelint, e.g. `python -m venv /tmp/peers &&
/tmp/peers/bin/pip install fixit pylint semgrep`, then `--bin /tmp/peers/bin`.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from run import SHARED, arguments, corpus, floor_seconds


def peers(targets: list[Path], bin_dir: Path | None) -> dict[str, list[str]]:
    def tool(name: str) -> str | None:
        if bin_dir is not None and (bin_dir / name).exists():
            return str(bin_dir / name)
        return shutil.which(name)

    found = {}
    if fixit := tool("fixit"):
        found["fixit lint"] = [fixit, "lint", *map(str, targets)]
    if pylint := tool("pylint"):
        found["pylint --jobs 1"] = [pylint, "--jobs", "1", "--recursive", "y", *map(str, targets)]
    if semgrep := tool("semgrep"):
        rules = SHARED / "semgrep-rules.yml"
        found["semgrep scan -j 1"] = [
            semgrep,
            "scan",
            "--config",
            str(rules),
            "--metrics=off",
            "--disable-version-check",
            "-j",
            "1",
            "--quiet",
            *map(str, targets),
        ]
    return found


def main() -> None:
    parser = arguments(__doc__ or "", pairs=1)
    parser.add_argument("--bin", type=Path, help="folder holding the peers' executables")
    args = parser.parse_args()
    tier, targets = corpus(args)
    env = {**os.environ, "SEMGREP_SEND_METRICS": "off"}
    found = peers(targets, args.bin)
    if not found:
        sys.exit("no peer linter found (see --bin)")
    print(f"{'peer':<20} {'x floor':>8}  detail")
    for name, command in found.items():
        ratios, walls, floors = [], [], []
        for _ in range(args.pairs):
            floor = floor_seconds(targets)
            start = time.perf_counter()
            subprocess.run(command, cwd=tier, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wall = time.perf_counter() - start
            ratios.append(wall / floor)
            walls.append(wall)
            floors.append(floor)
        ratio = statistics.median(ratios)
        detail = f"{statistics.median(walls):.1f}s vs {statistics.median(floors):.2f}s"
        print(f"{name:<20} {ratio:8.1f}  {detail}", flush=True)


if __name__ == "__main__":
    main()
