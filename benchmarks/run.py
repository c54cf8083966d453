#!/usr/bin/env python3
"""scalelint's speed against its parse floor, measured as paired ratios.

Usage: python benchmarks/run.py [--tier small|large] [--pairs 5] [--corpus DIR]

Builds the pinned corpus with ../shared/bench/corpus.sh (if needed), then alternates
the floor (`parse_floor.py --mode libcst`, one process) with scalelint runs and prints
the median ratio of each pair, so machine noise hits both sides alike:

  cold-1      scalelint --no-cache --jobs 1        / floor          target <= 2.0
  cold-2      scalelint --no-cache --jobs 2        / cold-1         target <= 0.55
              (next to it, the floor's own: parse_floor.py --jobs 2 / --jobs 1)
  warm        scalelint (cache full, no change)    / cold-1         target <= 0.03
  warm-1      scalelint (one file changed: a comment, then code) / cold-1  target <= 0.05 + that file
              (the code edit also answered by `scalelint daemon`); "that file" is what
              parsing it alone costs a fresh process (importing libcst, then parsing:
              `python -c` doing both, less `python -c pass`), over cold-1
  memory      peak RSS of a cold --jobs 1 run, and per process of a cold --jobs 2 run
              (MiB; the target, 300, is per worker)

Wall times include interpreter start-up for scalelint; the floor script times only
its parse loop, which favours the floor.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "bench"


def timed(command: list[str], cwd: Path | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def floor_seconds(targets: list[Path], jobs: int = 1) -> float:
    out = subprocess.run(
        [
            sys.executable,
            str(SHARED / "parse_floor.py"),
            "--mode",
            "libcst",
            "--jobs",
            str(jobs),
            *map(str, targets),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # "... t=5.64s ..." is the parse loop's own time.
    return float(out.split(" t=")[1].split("s")[0])


def that_file_seconds(path: Path, pairs: int) -> float:
    """What parsing `path` alone costs a process that has parsed nothing yet: importing
    libcst and parsing it, over an interpreter that does nothing."""
    parse = f"import libcst; libcst.parse_module(open({str(path)!r}, 'rb').read())"
    python = [sys.executable, "-c"]
    costs = [timed([*python, parse]) - timed([*python, "pass"]) for _ in range(pairs)]
    return max(0.0, statistics.median(costs))


def scalelint_cli() -> list[str]:
    return [sys.executable, "-m", "scalelint"]


def compile_scalelint() -> None:
    """Byte-compile scalelint as `pip install` does: from a checkout run with
    PYTHONDONTWRITEBYTECODE set, every run would compile its own sources again."""
    import scalelint

    package = Path(scalelint.__file__).parent
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True)


def scalelint(target: Path, *options: str) -> list[str]:
    return [*scalelint_cli(), "check", ".", "--format", "json", *options]


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def peaks_per_process(command: list[str], cwd: Path) -> tuple[float, float]:
    """Peak RSS of the main process and of its largest worker, polled from /proc."""
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    main_peak = worker_peak = 0.0
    while process.poll() is None:
        main_peak = max(main_peak, rss_mib(process.pid))
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
        try:
            workers = [int(pid) for pid in children.read_text().split()]
        except OSError:
            workers = []
        for pid in workers:
            worker_peak = max(worker_peak, rss_mib(pid))
        time.sleep(0.1)
    return main_peak, worker_peak


def median_ratio(pairs: int, numerator, denominator) -> tuple[float, float, float]:
    ratios, tops, bottoms = [], [], []
    for _ in range(pairs):
        bottom = denominator()
        top = numerator()
        ratios.append(top / bottom)
        tops.append(top)
        bottoms.append(bottom)
    return statistics.median(ratios), statistics.median(tops), statistics.median(bottoms)


def arguments(description: str, pairs: int) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tier", default="small", choices=["small", "large"])
    parser.add_argument("--pairs", type=int, default=pairs)
    parser.add_argument("--corpus", type=Path, default=REPO / ".bench-corpus")
    return parser


def corpus(args: argparse.Namespace) -> tuple[Path, list[Path]]:
    """The tier's folder (built if needed) and its packages."""
    subprocess.run(
        ["bash", str(SHARED / "corpus.sh"), "--tier", args.tier, str(args.corpus)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    tier = args.corpus / args.tier
    return tier, sorted(p for p in tier.iterdir() if p.is_dir())


def main() -> None:
    args = arguments(__doc__ or "", pairs=5).parse_args()
    tier, targets = corpus(args)
    compile_scalelint()
    # The corpus is one project folder holding every package.
    (tier / "scalelint.toml").write_text("")
    lines = sum(1 for t in targets for f in t.rglob("*.py") for _ in f.open("rb"))
    print(f"corpus: {args.tier} tier, {len(targets)} packages, {lines:,} lines of .py")

    def cold(jobs: int) -> float:
        return timed(scalelint(tier, "--no-cache", "--jobs", str(jobs)), cwd=tier)

    rows = []
    ratio, top, bottom = median_ratio(args.pairs, lambda: cold(1), lambda: floor_seconds(targets))
    rows.append(("cold-1 / floor", ratio, f"{top:.2f}s vs {bottom:.2f}s", 2.0))
    cold_1 = top
    ratio, top, bottom = median_ratio(args.pairs, lambda: cold(2), lambda: cold(1))
    rows.append(("cold-2 / cold-1", ratio, f"{top:.2f}s vs {bottom:.2f}s", 0.55))
    # What two cores give this machine for the parse alone, measured alongside.
    ratio, top, bottom = median_ratio(
        args.pairs, lambda: floor_seconds(targets, jobs=2), lambda: floor_seconds(targets)
    )
    rows.append(("  the floor itself: 2 processes / 1", ratio, f"{top:.2f}s vs {bottom:.2f}s", float("inf")))

    subprocess.run(
        [sys.executable, "-m", "scalelint", "clean", str(tier)], stdout=subprocess.DEVNULL, check=True
    )
    timed(scalelint(tier, "--jobs", "2"), cwd=tier)  # fill the cache
    warm = statistics.median(timed(scalelint(tier), cwd=tier) for _ in range(args.pairs))
    rows.append(("warm / cold-1", warm / cold_1, f"{warm:.2f}s vs {cold_1:.2f}s", 0.03))

    victim = next(iter(sorted(targets[0].rglob("*.py"))))
    original = victim.read_bytes()
    that_file = that_file_seconds(victim, args.pairs) / cold_1
    print(f"edited file: {victim.relative_to(tier)}; parsing it alone: {that_file:.3f} of cold-1")
    # A comment leaves the file's facts as they were (the kept result is found by them);
    # a new statement changes them, and the project is analysed again.
    edits = {
        "warm, 1 file changed (comment) / cold-1": "\n# benchmark edit {}\n",
        "warm, 1 file changed (code) / cold-1": "\nBENCHMARK_EDIT = {}\n",
    }
    for name, edit in edits.items():
        changed = []
        try:
            for index in range(args.pairs):
                victim.write_bytes(original + edit.format(index).encode())
                changed.append(timed(scalelint(tier), cwd=tier))
        finally:
            victim.write_bytes(original)
        warm_1 = statistics.median(changed)
        rows.append((name, warm_1 / cold_1, f"{warm_1:.2f}s", 0.05 + that_file))

    # The same code edits answered by a daemon (`scalelint daemon start`), which keeps the
    # facts and what the last run derived from them in memory.
    subprocess.run([*scalelint_cli(), "daemon", "start", str(tier)], stdout=subprocess.DEVNULL, check=True)
    changed = []
    try:
        for index in range(args.pairs):
            # New values: facts no kept result was computed from.
            edit = edits["warm, 1 file changed (code) / cold-1"].format(f"'daemon {index}'")
            victim.write_bytes(original + edit.encode())
            time.sleep(0.2)  # edits come seconds apart; the daemon tidies up after answering
            changed.append(timed(scalelint(tier), cwd=tier))
    finally:
        victim.write_bytes(original)
        stop = [*scalelint_cli(), "daemon", "stop", str(tier)]
        subprocess.run(stop, stdout=subprocess.DEVNULL, check=False)
    warm_1 = statistics.median(changed)
    rows.append(("warm, 1 file changed (code), daemon", warm_1 / cold_1, f"{warm_1:.2f}s", 0.05 + that_file))

    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    cold(1)
    peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    # One process holds every fact and the model over them: the target is per worker.
    rows.append(("peak memory, cold 1 process (MiB)", peak, "", float("inf")))
    if Path("/proc/self/status").exists():
        main_peak, worker_peak = peaks_per_process(scalelint(tier, "--no-cache", "--jobs", "2"), tier)
        rows.append(("peak memory per worker, cold -j 2 (MiB)", worker_peak, "", 300))
        rows.append(("peak memory, main process, cold -j 2 (MiB)", main_peak, "", float("inf")))

    print(f"{'measure':<44} {'value':>8}  {'target':>7}  detail")
    for name, value, detail, target in rows:
        mark = "" if target == float("inf") else "ok" if value <= target else "OVER"
        shown = "-" if target == float("inf") else f"{target:g}" if target >= 1 else f"{target:.3f}"
        print(f"{name:<44} {value:8.3f}  {shown:>7}  {detail} {mark}")


if __name__ == "__main__":
    main()
