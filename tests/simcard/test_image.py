"""The card image: round trip, exclusive lock, refusal of foreign/corrupt files, kill -9."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from simcard import (
    CardParamError,
    ImageCorrupt,
    ImageExists,
    ImageLocked,
    ImageMissing,
    ImageWriteError,
    MemoryStore,
    SimCard,
    create_image,
    open_image,
)
from simcard.state import CardParams, new_state

from ._apdu import ADN, TELECOM, h, newsync, read, select, storesync, tx, update, verify

ROOT = Path(__file__).resolve().parents[2]
RECORDS, ALPHA = 8, 4
LENGTH = ALPHA + 14


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "card.sim"
    create_image(path, records=RECORDS, alpha_len=ALPHA, partners=8)
    return path


def test_round_trip(image: Path) -> None:
    card = open_image(image)
    try:
        assert tx(card, b"\xa0\x20\x00\x01\x08" + b"9999\xff\xff\xff\xff") == h("9804")
        verify(card)
        select(card, 0, TELECOM, ADN)
        update(card, 0, 2, b"A" * LENGTH)
        ns = newsync(card, 0, b"pda")
        assert storesync(card, 0, ns.proposed) == 0x9000
        update(card, 0, 3, b"B" * LENGTH)
        before = card.info()
    finally:
        card.close()
    card = open_image(image)
    try:
        assert card.info() == before
        verify(card)
        select(card, 0, TELECOM, ADN)
        assert read(card, 0, 2, LENGTH) == b"A" * LENGTH
        assert read(card, 0, 3, LENGTH) == b"B" * LENGTH
        again = newsync(card, 0, b"pda")
        assert again.last == ns.proposed
        assert again.count == 1  # record 3, written after the STORESYNC
    finally:
        card.close()


def test_create_defaults_and_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "card.sim"
    create_image(path)
    card = open_image(path)
    info = card.info()
    card.close()
    assert info["records"] == 250
    assert info["alpha_len"] == 18
    assert info["table_size"] == 8
    assert info["sync_applet"] is True
    before = digest(path)
    with pytest.raises(ImageExists):
        create_image(path, records=5)
    assert digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card.sim"]


def test_bad_parameters_create_nothing(tmp_path: Path) -> None:
    with pytest.raises(CardParamError):
        create_image(tmp_path / "x.sim", pin="12")
    assert list(tmp_path.iterdir()) == []


def test_missing(tmp_path: Path) -> None:
    with pytest.raises(ImageMissing):
        open_image(tmp_path / "nope.sim")


def test_second_open_is_locked_until_close(image: Path) -> None:
    card = open_image(image)
    with pytest.raises(ImageLocked):
        open_image(image)
    code = (
        "import sys\nfrom simcard import open_image, ImageLocked\n"
        "try:\n    open_image(sys.argv[1])\nexcept ImageLocked:\n    sys.exit(3)\n"
    )
    other = subprocess.run([sys.executable, "-c", code, str(image)], cwd=ROOT, check=False)
    assert other.returncode == 3
    card.close()
    open_image(image).close()


@pytest.mark.parametrize(
    "content",
    [b"", b"hello, not a card\n" * 10, os.urandom(4096), b"SQLite format 3\x00" + bytes(84)],
    ids=["empty", "text", "random", "bare-header"],
)
def test_garbage_is_corrupt_and_untouched(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.sim"
    path.write_bytes(content)
    with pytest.raises(ImageCorrupt):
        open_image(path)
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.sim"]


def test_foreign_sqlite_is_corrupt_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    before = digest(path)
    with pytest.raises(ImageCorrupt, match="foreign"):
        open_image(path)
    assert digest(path) == before


def test_truncated_image_is_corrupt(image: Path) -> None:
    data = image.read_bytes()
    image.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageCorrupt):
        open_image(image)


@pytest.mark.parametrize(
    ("sql", "why"),
    [
        ("PRAGMA user_version = 99", "schema version 99"),
        ("UPDATE record SET data = x'00' WHERE rec = 1 AND fid = 28474", "wrong length"),
        ("DELETE FROM record WHERE rec = 2 AND fid = 28474", "records missing"),
        ("UPDATE card SET pin_left = 7", "counters"),
        ("UPDATE card SET records = 300", "records must be"),
        ("DELETE FROM slot WHERE idx = 7", "partner table"),
        ("UPDATE slot SET partner = x'41', fid = 28474, obj = x'00', seq = 1", "entry 0"),
    ],
)
def test_inconsistent_image_is_corrupt(image: Path, sql: str, why: str) -> None:
    conn = sqlite3.connect(image)
    conn.execute(sql)
    conn.commit()
    conn.close()
    before = digest(image)
    with pytest.raises(ImageCorrupt, match=why):
        open_image(image)
    assert digest(image) == before


class FailingStore(MemoryStore):
    """A store whose disk is gone."""

    def commit(self, changes) -> None:
        raise ImageWriteError("disk on fire")


def test_failed_commit_answers_6f00_and_changes_nothing() -> None:
    state = new_state(CardParams(records=4), "0000", "12345678")
    card = SimCard(FailingStore(state))
    verify(card)  # right PIN with full counter: nothing to write
    select(card, 0, TELECOM, ADN)
    assert tx(card, b"\x00\xdc\x01\x04\x20" + b"A" * 32) == h("6F00")
    assert read(card, 0, 1, 32) == b"\xff" * 32
    ns = newsync(card, 0, b"pda")
    assert storesync(card, 0, ns.proposed) == 0x6F00
    assert card.info()["partners"] == []
    assert tx(card, b"\xa0\x20\x00\x01\x08" + b"9999\xff\xff\xff\xff") == h("6F00")
    assert card.info()["pin_tries_left"] == 3


def test_storesync_is_one_transaction(image: Path) -> None:
    card = open_image(image)
    try:
        verify(card)
        select(card, 0, TELECOM, ADN)
        first = newsync(card, 0, b"pda")
        assert storesync(card, 0, first.proposed) == 0x9000
        update(card, 0, 1, b"A" * LENGTH)  # dirty for "pda": its STORESYNC must clear it
        ns = newsync(card, 0, b"pda")
        # Make the metadata part of the next STORESYNC fail after its slot part ran.
        other = sqlite3.connect(image)
        other.execute(
            "CREATE TRIGGER boom BEFORE UPDATE OF meta ON record WHEN NEW.data = OLD.data"
            " BEGIN SELECT RAISE(ABORT, 'injected'); END"
        )
        other.commit()
        assert storesync(card, 0, ns.proposed) == 0x6F00
        other.execute("DROP TRIGGER boom")
        other.commit()
        other.close()
    finally:
        card.close()
    card = open_image(image)
    try:
        verify(card)
        again = newsync(card, 0, b"pda")
        assert again.last == first.proposed  # the slot write was rolled back with the rest
        assert again.count == 1
    finally:
        card.close()


def _state_of(path: Path) -> tuple[list[bytes], dict[str, bytes | None]]:
    card = open_image(path)
    try:
        verify(card)
        select(card, 0, TELECOM, ADN)
        records = [read(card, 0, r, LENGTH) for r in range(1, RECORDS + 1)]
        objs = {p: newsync(card, 0, p.encode()).last for p in ("p0", "p1", "p2")}
    finally:
        card.close()
    return records, objs


class WorkerLog:
    """What the crash worker said: acknowledged values and the one write in flight."""

    def __init__(self, records: list[bytes], objs: dict[str, bytes | None]) -> None:
        self.acked = dict(enumerate(records, 1))
        self.acked_objs = dict(objs)
        self.in_flight_rec: dict[int, bytes] = {}
        self.in_flight_obj: dict[str, bytes] = {}
        self.acks = 0

    def feed(self, line: str) -> None:
        kind, key, *rest = line.split()
        if kind == "W":
            self.in_flight_rec[int(key)] = bytes.fromhex(rest[0])
        elif kind == "A":
            self.acked[int(key)] = self.in_flight_rec.pop(int(key))
            self.acks += 1
        elif kind == "S":
            self.in_flight_obj[key] = bytes.fromhex(rest[0])
        else:
            self.acked_objs[key] = self.in_flight_obj.pop(key)
            self.acks += 1


def test_kill_9_leaves_before_or_after(image: Path) -> None:
    rng = random.Random(4711)
    records, objs = _state_of(image)
    acks = 0
    for round_ in range(6):
        log = WorkerLog(records, objs)
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.simcard._crash_worker", str(image), str(round_),
             str(RECORDS), str(LENGTH)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert proc.stdout is not None
        try:
            assert proc.stdout.readline() == "READY\n"
            for _ in range(rng.randrange(20, 400)):
                log.feed(proc.stdout.readline())
            os.kill(proc.pid, signal.SIGKILL)  # while it keeps writing
        finally:
            proc.kill()
            proc.wait()
            # Lines written before the kill may still be in the pipe: they count too.
            for line in proc.stdout.read().splitlines():
                log.feed(line)
            proc.stdout.close()
        records, objs = _state_of(image)  # opens: not torn, and the lock died with it
        for r, got in enumerate(records, 1):
            assert got in (log.acked[r], log.in_flight_rec.get(r)), f"round {round_}: record {r}"
        for p, obj in objs.items():
            assert obj in (log.acked_objs[p], log.in_flight_obj.get(p)), f"round {round_}: {p}"
        acks += log.acks
    assert acks > 100  # the rounds did real work before each kill


@pytest.mark.parametrize(
    "tamper",
    [
        "UPDATE card SET pin_left = 'x'",
        "UPDATE record SET fid = 'abc' WHERE rowid = 1",
        "UPDATE record SET rec = 'z' WHERE rowid = 1",
    ],
)
def test_a_value_of_the_wrong_type_is_a_corrupt_image(tmp_path: Path, tamper: str) -> None:
    import sqlite3

    path = tmp_path / "card.sim"
    create_image(path, records=5)
    conn = sqlite3.connect(path)
    conn.execute(tamper)
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(ImageCorrupt, match="wrong type"):
        open_image(path)
    assert path.read_bytes() == before
