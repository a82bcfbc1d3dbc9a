"""The device identity: a load (OpenSSL checks both files) against the cached answer.

    .venv/bin/python -m bench.identity [--rounds N]

Prints the median and min-max microseconds of ``Identity.load_or_create`` on an
existing identity, with its files unchanged (the cached answer: two ``stat`` calls)
and with the key's ctime moved before each call (a chmod to the same mode), which
makes every call load and check the files again, as every call did before the cache.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from transports import Identity


def _time(rounds: int, before: Callable[[], None], call: Callable[[], object]) -> list[float]:
    out: list[float] = []
    for _ in range(rounds):
        before()
        start = time.perf_counter_ns()
        call()
        out.append((time.perf_counter_ns() - start) / 1000)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=500)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "identity"
        key = Identity.load_or_create(folder).key_path
        cases = {
            "files changed (a load)": lambda: key.chmod(0o600),
            "files unchanged (cached)": lambda: None,
        }
        for label, before in cases.items():
            times = _time(args.rounds, before, lambda: Identity.load_or_create(folder))
            print(
                f"{label:<26} median {statistics.median(times):8.1f} us "
                f"(min {min(times):.1f}, max {max(times):.1f}, {args.rounds} calls)"
            )


if __name__ == "__main__":
    main()
