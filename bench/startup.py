"""How long a command takes to start: ``simsync --help`` and the imports behind each command.

    .venv/bin/python -m bench.startup [--runs N]

Fresh interpreters, bytecode present (``scripts/dev.sh`` compiles it at install;
one warm-up run here makes sure). Prints the median and min-max wall time of
each, then how many modules each case loaded from bytecode and which (if any)
it had to compile from source (``PYTHONVERBOSE``); asserts nothing. Target
(issue 9): ``simsync --help`` <= 0.12 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SIMSYNC = str(Path(sys.executable).with_name("simsync"))

CASES: dict[str, list[str]] = {
    "python -c pass (the floor)": [sys.executable, "-c", "pass"],
    "simsync --help": [SIMSYNC, "--help"],
    "simsync pda --help": [SIMSYNC, "pda", "--help"],
    "simsync card --help": [SIMSYNC, "card", "--help"],
    "import daemon.cli": [sys.executable, "-c", "import daemon.cli"],
    "import daemon.config": [sys.executable, "-c", "import daemon.config"],
    "import daemon.sync (simsync sync)": [sys.executable, "-c", "import daemon.sync"],
    "import pda.node (simsync pda serve)": [sys.executable, "-c", "import pda.node"],
}


def timed(argv: Sequence[str], runs: int) -> list[float]:
    """Wall seconds of `runs` runs of argv (after one warm-up run that writes bytecode)."""
    subprocess.run(argv, cwd=REPO, capture_output=True, check=False)
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, cwd=REPO, capture_output=True, check=False)
        out.append(time.perf_counter() - start)
    return out


def measure(runs: int) -> dict[str, list[float]]:
    """Every case's wall times."""
    return {label: timed(argv, runs) for label, argv in CASES.items()}


def bytecode(argv: Sequence[str]) -> tuple[int, list[str]]:
    """(modules loaded from .pyc, sources compiled) in one run of argv, from the import
    system's verbose messages ("code object from PATH")."""
    proc = subprocess.run(
        argv, cwd=REPO, capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONVERBOSE": "1"},
    )  # fmt: skip
    from_pyc, compiled = 0, []
    for line in proc.stderr.splitlines():
        if line.startswith("# code object from "):
            path = line.removeprefix("# code object from ").strip("'")
            if path.endswith(".pyc"):
                from_pyc += 1
            else:
                compiled.append(path)
    return from_pyc, compiled


def main(argv: Sequence[str] | None = None) -> None:
    """Time each case and print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    results = measure(args.runs)
    print(f"load average {load:.1f} -> {os.getloadavg()[0]:.1f}")
    for label, times in results.items():
        print(
            f"{label:40s} median {statistics.median(times) * 1000:6.0f} ms  "
            f"(min {min(times) * 1000:4.0f} - max {max(times) * 1000:4.0f})"
        )
    for label, case in CASES.items():  # as the timed runs found it: after their warm-up
        from_pyc, compiled = bytecode(case)
        print(f"{label:40s} {from_pyc} modules from bytecode, {len(compiled)} compiled now")
        for path in compiled:
            print(f"    compiled from source: {path}")


if __name__ == "__main__":
    main()
