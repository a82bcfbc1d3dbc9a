"""How long a VdirStore scan takes at 10,000 contacts: first, no change, 5 changed.

Each rescan twice: with the stat loop (a store as a one-shot command makes it)
and watching with inotify (as the long-running ``simsync pda serve`` does).

Run: ``python -m bench.pda_scan [--count N] [--dir PATH]``. Prints numbers, asserts nothing.
Target (issue #4): the rescan with 5 changed files at most 0.3 s for 10,000 contacts.
The files are written directly, as khard or vdirsyncer would, and backdated one
minute so the racy-file check (pda/status.py) does not apply to them.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from pda.store import Projection
from pda.vcard import new_card
from pda.vdir import VdirStore


def _timed(store: VdirStore) -> tuple[float, int, int, int]:
    parsed, statted = store.parse_count, store.stat_count
    start = time.perf_counter()
    contacts = store.scan()
    took = time.perf_counter() - start
    return took, len(contacts), store.parse_count - parsed, store.stat_count - statted


def _print(label: str, store: VdirStore) -> None:
    took, n, parsed, statted = _timed(store)
    print(f"{label:44} {took:7.3f} s  {n} contacts, {statted} statted, {parsed} parsed")


def run(root: Path, count: int) -> None:
    """Fill a vdir under `root` and print the scan timings."""
    vdir = root / "contacts"
    vdir.mkdir()
    past = time.time_ns() - 60_000_000_000
    start = time.perf_counter()
    for i in range(count):
        path = vdir / f"c{i:05}.vcf"
        card = new_card(f"c{i:05}", Projection(f"Person Number {i}", f"+49170{i:07}"))
        path.write_text(card.replace("END:VCARD", "EMAIL:p@example.org\r\nEND:VCARD"))
        os.utime(path, ns=(past, past))
    print(f"wrote {count} cards in {time.perf_counter() - start:.2f} s")

    stat_loop = VdirStore(vdir)
    _print("first scan (parse all, fill status)", stat_loop)
    watched = VdirStore(vdir, watch=True)
    _print("watching: first scan (the stat loop)", watched)
    for store, how in ((stat_loop, "stat loop"), (watched, "watching")):
        _print(f"{how}: no-change rescan", store)

    for i in range(0, count, max(1, count // 5))[:5]:
        path = vdir / f"c{i:05}.vcf"
        path.write_text(new_card(f"c{i:05}", Projection(f"Edited {i}", "+1555")))
        # A second later than the first write: the stat key differs in mtime too, so the
        # stat loop's row does not rest on the size having changed; still not racy.
        os.utime(path, ns=(past + 1_000_000_000, past + 1_000_000_000))
    for store, how in ((stat_loop, "stat loop"), (watched, "watching")):
        _print(f"{how}: rescan, 5 files changed", store)
    watched.close()

    _print("new process, no change", VdirStore(vdir))


def main() -> None:
    """Parse arguments and run in a temp dir (or the given one)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--dir", type=Path, help="parent dir for the vdir (default: a temp dir)")
    args = parser.parse_args()
    if args.dir is not None:
        run(args.dir, args.count)
        return
    with tempfile.TemporaryDirectory(prefix="simsync-bench-") as tmp:
        run(Path(tmp), args.count)


if __name__ == "__main__":
    main()
