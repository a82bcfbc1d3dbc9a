"""A hostile world, generated: odd vdir trees and odd card records, each followed by syncs.

Hypothesis builds a vdir as people and programs leave them (random bytes and
sizes, Latin-1 saves, vCard 2.1, names that are not UTF-8, links into and out of
the directory, duplicate UIDs, directories and links to nothing named ``.vcf``,
files rewritten or removed while the store scans) and card records another
terminal wrote (any bytes in any record). Each example runs the real sync path
(tests/e2e/harness.py: card image, `PdaServer` over TCP + TLS, `run_sync`) and
checks the invariants of issue 10:

- no file outside the vdir is touched, except the target of a link the person
  made, which stays a whole vCard with its UID;
- no user file is lost or truncated: every file is still there, set-aside files
  byte for byte, usable ones still a vCard with their UID;
- no contact is deleted that a person did not delete (no person deletes here);
- every sync ends ``ok`` or with a precise error code (never ``internal``);
- the next sync, with nothing changed, converges: nothing moves either way.

CI runs a bounded number of fixed examples (``HOSTILE_EXAMPLES``, default 20);
docs/pda.md gives the command for a longer run and what it tried.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pda.vfile
from cardio.codecs import AdnRecord, CodecError
from pda.vcard import decode_card, parse_card
from pda.vfile import MAX_VCARD_BYTES
from tests.e2e.harness import Card, world

EXAMPLES = int(os.environ.get("HOSTILE_EXAMPLES", "20"))
NOTHING = {"added": 0, "modified": 0, "deleted": 0}
RECORD = 18 + 14  # alpha_len + 14 bytes of an ADN record in the harness card

names = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=24
)
numbers = st.from_regex(r"\+?[0-9]{1,14}", fullmatch=True)
uids = st.sampled_from(["u1", "u2", "u3", "u4", "u5", "u6"])  # small pool: duplicates happen
file_names = (
    st.one_of(
        st.from_regex(r"[A-Za-z0-9 _\-]{1,30}", fullmatch=True).map(lambda s: s.encode()),
        st.binary(min_size=1, max_size=20).filter(lambda b: b"/" not in b and b"\0" not in b),
        st.just("Müller Straße".encode("latin-1")),
    )
    .filter(lambda b: not b.startswith(b"."))
    .map(lambda b: b + b".vcf")
)


def card30(uid: str, name: str, number: str) -> bytes:
    fn = name.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;")
    return (
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{fn}\r\n"
        f"TEL;TYPE=CELL:{number}\r\nEMAIL:{uid}@example.org\r\nEND:VCARD\r\n"
    ).encode()


def card21(uid: str, name: str, number: str) -> bytes:
    latin = name.encode("latin-1", "replace")
    qp = "".join(f"={b:02X}" if b > 126 or b in b"=;\\" else chr(b) for b in latin)
    return (
        b"BEGIN:VCARD\r\nVERSION:2.1\r\nUID:" + uid.encode() + b"\r\n"
        b"FN;CHARSET=ISO-8859-1;ENCODING=QUOTED-PRINTABLE:" + qp.encode() + b"\r\n"
        b"TEL;CELL:" + number.encode() + b"\r\nEND:VCARD\r\n"
    )


@dataclass(frozen=True)
class Entry:
    """One thing named ``*.vcf`` in the vdir."""

    name: bytes
    kind: str  # card30, card21, latin1, junk, oversized, link_in, link_out, dangling, dir
    data: bytes


@st.composite
def entries(draw: st.DrawFn) -> Entry:
    kind = draw(
        st.sampled_from(
            ["card30", "card30", "card21", "latin1", "junk", "oversized", "link_in", "link_out",
             "dangling", "dir"]
        )
    )  # fmt: skip
    uid, name, number = draw(uids), draw(names), draw(numbers)
    data = {
        "card30": card30(uid, name, number),
        "card21": card21(uid, name, number),
        "latin1": card30(uid, name, number).replace(b"FN:", b"FN:\xe9", 1),
        "junk": draw(st.binary(max_size=300)),
        "link_in": card30(uid, name, number),
        "link_out": card30(uid, name, number),
    }.get(kind, b"")
    return Entry(draw(file_names), kind, data)


@dataclass(frozen=True)
class World:
    """What one example builds."""

    files: list[Entry]
    records: dict[int, bytes]  # raw ADN records another terminal writes
    racer: int | None  # index of a file rewritten or removed during the scan
    race_to: bytes | None  # None: removed


worlds = st.builds(
    World,
    st.lists(entries(), max_size=7, unique_by=lambda e: e.name),
    st.dictionaries(st.integers(1, 12), st.binary(min_size=RECORD, max_size=RECORD), max_size=4),
    st.none() | st.integers(0, 6),
    st.none() | st.binary(max_size=200) | st.builds(card30, uids, names, numbers),
)


def build(vdir: Path, outside: Path, w: World) -> None:
    raw = os.fsencode(vdir)
    for i, e in enumerate(w.files):
        path = raw + b"/" + e.name
        if e.kind in ("card30", "card21", "latin1", "junk"):
            with open(path, "wb") as f:
                f.write(e.data)
        elif e.kind == "oversized":
            with open(path, "wb") as f:
                f.write(b"BEGIN:VCARD\r\nUID:u1\r\n")
                f.truncate(MAX_VCARD_BYTES + 1)
        elif e.kind == "link_in":
            (vdir / ".linked").mkdir(exist_ok=True)
            (vdir / ".linked" / f"t{i}").write_bytes(e.data)
            os.symlink(f".linked/t{i}".encode(), path)
        elif e.kind == "link_out":
            (outside / f"t{i}.vcf").write_bytes(e.data)
            os.symlink(os.fsencode(outside / f"t{i}.vcf"), path)
        elif e.kind == "dangling":
            os.symlink(b"nowhere", path)
        else:
            os.mkdir(path)


def tree(root: Path) -> dict[bytes, bytes | None]:
    """Every file under root (links not followed): its bytes; a link or dir: None."""
    out: dict[bytes, bytes | None] = {}
    for dirpath, dirs, files in os.walk(os.fsencode(root)):
        for n in files + dirs:
            p = os.path.join(dirpath, n)
            out[p] = (
                None if os.path.islink(p) or os.path.isdir(p) else Path(os.fsdecode(p)).read_bytes()
            )
    return out


def uid_of(data: bytes | None) -> str | None:
    try:
        return parse_card(decode_card(data or b"")).uid
    except Exception:
        return None


def install_racer(monkeypatch: pytest.MonkeyPatch, vdir: Path, w: World) -> None:
    """The first time the store reads a file, another program rewrites or removes one."""
    if w.racer is None or w.racer >= len(w.files):
        return
    target = os.fsencode(vdir) + b"/" + w.files[w.racer].name
    real_load = pda.vfile.load
    fired: list[bool] = []

    def racing(directory: Path, filename: str, old_uid: str | None = None) -> Any:
        if not fired:
            fired.append(True)
            if os.path.isfile(target) and not os.path.islink(target):
                if w.race_to is None:
                    os.unlink(target)
                else:
                    with open(target, "wb") as f:
                        f.write(w.race_to)
        return real_load(directory, filename, old_uid)

    monkeypatch.setattr("pda.vdir.load", racing)  # the name the store calls


def card_records(card: Card) -> dict[int, tuple[str, str]]:
    """Every record a phone can decode (another terminal's garbage left out)."""
    out: dict[int, tuple[str, str]] = {}
    sim = card._session()
    try:
        for n in range(1, 13):
            r = sim.transmit(bytes([0xA0, 0xB2, n, 4, RECORD]))
            with contextlib.suppress(CodecError):
                rec = AdnRecord.decode(r[:-2])
                if rec is not None:
                    out[n] = (rec.name, rec.number)
    finally:
        sim.close()
    return out


def check(result: dict[str, Any]) -> None:
    assert result["ok"] or result["error"]["code"] != "internal", result


async def scenario(root: Path, w: World, patch: Callable[[Path, World], None]) -> None:
    async with world(root, records=12) as wd:
        wd.card.write(1, "Kept On Card", "+4900")
        p = await wd.add_pda("pda1")
        p.add("Kept On Pda", "+4901")
        check(await wd.sync("pda1"))  # a synced pair to start from
        card_before = card_records(wd.card)
        outside = root / "outside"
        outside.mkdir()
        build(p.dir.contacts, outside, w)
        for n, raw in w.records.items():
            wd.card.write_raw(n, raw)
        patch(p.dir.contacts, w)
        vdir_before, outside_before = tree(p.dir.contacts), tree(outside)

        res = await wd.sync("pda1")
        check(res)
        seen = f"sync {res}, card now {card_records(wd.card)}, before {card_before}"

        racer = os.fsencode(p.dir.contacts) + b"/" + w.files[w.racer].name if (
            w.racer is not None and w.racer < len(w.files)
        ) else None  # fmt: skip
        after = tree(p.dir.contacts)
        for path, data in vdir_before.items():
            if path == racer or os.path.basename(path).startswith(b".simsync-"):
                continue  # another program changed it meanwhile; or simsync's own files
            assert path in after, f"lost {path!r}"
            if data is not None and after[path] != data:  # only usable cards are written
                assert uid_of(data) is not None, f"set-aside file changed: {path!r}"
                assert uid_of(after[path]) == uid_of(data), f"{path!r} lost its UID"
        outside_after = tree(outside)
        assert set(outside_after) == set(outside_before), "files made or removed outside"
        for path, data in outside_before.items():
            if outside_after[path] != data:
                assert uid_of(outside_after[path]) == uid_of(data) is not None, path
        # No person deleted anything: what the card held that no terminal overwrote stays.
        kept = {r for n, r in card_records(wd.card).items() if n not in w.records}
        for n, rec in card_before.items():  # what no terminal overwrote is still there
            assert n in w.records or rec in kept, seen
        assert ("Kept On Card", "+4900") in card_records(wd.card).values() or 1 in w.records, seen
        assert "Kept On Pda" in {n for n, _ in p.contacts().values()}, seen

        again = await wd.sync("pda1")  # nothing changed since: nothing moves
        check(again)
        if again["ok"]:
            assert again["to_pda"] == again["to_card"] == NOTHING, again


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(w=worlds)
def test_a_hostile_world_loses_nothing_and_converges(
    monkeypatch: pytest.MonkeyPatch, w: World
) -> None:
    with tempfile.TemporaryDirectory() as tmp, monkeypatch.context() as m:
        asyncio.run(scenario(Path(tmp), w, lambda vdir, w: install_racer(m, vdir, w)))
