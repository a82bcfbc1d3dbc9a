"""The long-running PDA server keeps its vdir status table in memory between sessions.

Counts, not times: how often the table is read from SQLite, how many files are
parsed, how many transactions write it. Real `PdaServer` over TCP + mutual TLS,
the phone's `run_sync`, an in-process card image.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from pda.store import Projection
from pda.vcard import new_card
from tests.e2e.harness import world


def backdate(path: Path) -> None:
    """A minute old: outside the racy window, so a scan reads the file once, not twice."""
    past = time.time_ns() - 60_000_000_000
    os.utime(path, ns=(past, past))


async def test_the_server_reads_its_status_table_once_and_then_only_what_changed(
    tmp_path: Path,
) -> None:
    async with world(tmp_path, records=40) as w:
        for n in range(1, 6):
            w.card.write(n, f"Person {n}", f"+49{n:06d}")
        pda = await w.add_pda("pda1")
        for i in range(30):
            backdate(pda.dir.contacts / f"{pda.add(f'Waiting {i:02d}', f'+44{i:06d}')}.vcf")
        assert (await w.sync("pda1"))["mode"] == "slow"
        server = pda.server
        assert server is not None
        store = server.store
        assert store.watching  # inotify names what changed between syncs
        loads, parsed = store.status_loads, store.parse_count
        assert loads == 1

        for made in pda.dir.contacts.glob("*.vcf"):  # the first sync's files, aged: not racy
            backdate(made)
        await w.sync("pda1")  # reads them once more (inotify reported them): trusted now
        for _ in range(3):  # nothing changed: no SQL read of the table, no file read or stat
            stats = store.stat_count
            idle = await w.sync("pda1")
            assert idle["ok"], idle["error"]
            assert idle["to_card"] == {"added": 0, "modified": 0, "deleted": 0}
            assert store.stat_count == stats
        assert (store.status_loads, store.parse_count) == (loads, parsed)

        # A vdir tool rewrites one contact: that one file is read, the table still is not.
        uid = next(u for u, (name, _) in pda.contacts().items() if name == "Waiting 07")
        path = pda.dir.contacts / f"{uid}.vcf"
        path.write_text(new_card(uid, Projection("Waiting 07 (work)", "+4400000007")))
        backdate(path)
        stats = store.stat_count
        edited = await w.sync("pda1")
        assert edited["ok"], edited["error"]
        assert edited["to_card"]["modified"] == 1
        assert (store.status_loads, store.parse_count) == (loads, parsed + 1)
        assert store.stat_count == stats + 1  # that file, not the 35 of the book
        assert "Waiting 07 (work)" in {name for name, _ in w.card.records().values()}


async def test_the_changes_of_one_sync_write_the_status_table_once(tmp_path: Path) -> None:
    async with world(tmp_path, records=40) as w:
        pda = await w.add_pda("pda1")
        backdate(pda.dir.contacts / f"{pda.add('Somebody', '+441')}.vcf")
        assert (await w.sync("pda1"))["mode"] == "slow"
        store = pda.server.store if pda.server is not None else None
        assert store is not None
        for n in range(10, 16):  # another terminal adds six records
            w.card.write(n, f"Card Person {n}", f"+49{n:06d}")
        before = store.status_writes
        done = await w.sync("pda1")
        assert done["ok"], done["error"]
        assert done["to_pda"]["added"] == 6
        assert store.status_writes - before == 1  # six new files, one transaction
        assert store.status_loads == 1


async def test_a_server_told_not_to_watch_stats_every_file_at_every_sync(tmp_path: Path) -> None:
    async with world(tmp_path, records=40) as w:
        pda = await w.add_pda("pda1", watch=False)  # as `simsync pda serve --no-watch`
        for i in range(12):
            backdate(pda.dir.contacts / f"{pda.add(f'Person {i:02d}', f'+44{i:06d}')}.vcf")
        assert (await w.sync("pda1"))["ok"]
        store = pda.server.store if pda.server is not None else None
        assert store is not None
        assert not store.watching
        stats = store.stat_count
        idle = await w.sync("pda1")
        assert idle["ok"], idle["error"]
        assert store.stat_count - stats == 12  # the stat loop: every file
