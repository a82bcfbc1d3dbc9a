"""Rich vCards survive any number of syncs byte for byte; a card edit touches FN/N/TEL only.

The card holds a name (at most 18 bytes here) and one number; the PDA's vCards hold
far more: e-mail, several numbers, notes, photos, X- properties, long and non-Latin
names, in vCard 3.0 and 4.0, with CRLF or LF line ends. None of that may move.
"""

from __future__ import annotations

import base64
from pathlib import Path

from cardio.codecs import fit_name
from pda.vcard import derive_n, parse_card
from tests.e2e.harness import World

PHOTO = base64.b64encode(bytes(range(256)) * 3).decode()
_FOLDED_PHOTO = "\r\n ".join(
    [f"PHOTO;ENCODING=b;TYPE=JPEG:{PHOTO[:40]}"]
    + [PHOTO[i : i + 74] for i in range(40, len(PHOTO), 74)]
)

RICH = {
    # 3.0: long Latin name, two numbers (pref is the second), e-mail, note, folded photo, X-.
    "long": "\r\n".join([
        "BEGIN:VCARD", "VERSION:3.0", "UID:long",
        "FN:Maximilian Alexander von Hohenzollern",
        "N:von Hohenzollern;Maximilian;Alexander;;",
        "TEL;TYPE=WORK,VOICE:+49301111111",
        "TEL;TYPE=CELL,pref:+491702222222",
        "EMAIL;TYPE=INTERNET:max@example.org",
        "NOTE:Met at the fair\\, hall 3\\nCall after 6",
        "ORG:Example GmbH;Sales",
        _FOLDED_PHOTO,
        "X-ABLABEL:Lieblingskunde",
        "X-CUSTOM;X-PARAM=1:some value",
        "END:VCARD", "",
    ]),
    # 4.0: Greek, tel: URIs with PREF, a second e-mail, categories.
    "greek": "\r\n".join([
        "BEGIN:VCARD", "VERSION:4.0", "UID:greek",
        "FN:Αλέξανδρος Παπαδόπουλος",
        "N:Παπαδόπουλος;Αλέξανδρος;;;",
        "TEL;VALUE=uri;PREF=2;TYPE=home:tel:+302101234567",
        "TEL;VALUE=uri;PREF=1;TYPE=cell:tel:+306912345678",
        "EMAIL;PREF=1:alex@example.gr",
        "EMAIL:a.papadopoulos@example.com",
        "CATEGORIES:friends,athens",
        "X-SOCIALPROFILE;TYPE=mastodon:https://example.social/@alex",
        "END:VCARD", "",
    ]),
    # 3.0 with LF line ends: Cyrillic.
    "cyrillic": "\n".join([
        "BEGIN:VCARD", "VERSION:3.0", "UID:cyrillic",
        "FN:Дмитрий Шостакович",
        "N:Шостакович;Дмитрий;Дмитриевич;;",
        "TEL;TYPE=HOME:+78121234567",
        "NOTE:Композитор",
        "END:VCARD", "",
    ]),
    # 4.0: CJK, fits the card as it is.
    "cjk": "\r\n".join([
        "BEGIN:VCARD", "VERSION:4.0", "UID:cjk",
        "FN:山田太郎",
        "N:山田;太郎;;;",
        "TEL;VALUE=uri;TYPE=cell:tel:+819012345678",
        "EMAIL:taro@example.jp",
        "BDAY:19800401",
        "END:VCARD", "",
    ]),
    # 3.0: Arabic, a note and an X- property.
    "arabic": "\r\n".join([
        "BEGIN:VCARD", "VERSION:3.0", "UID:arabic",
        "FN:محمد عبد الله",
        "N:عبد الله;محمد;;;",
        "TEL;TYPE=CELL:+201001234567",
        "TEL;TYPE=WORK:+20223456789",
        "NOTE:صديق قديم",
        "X-PHONETIC-FIRST-NAME:Mohammed",
        "END:VCARD", "",
    ]),
}  # fmt: skip

NUMBERS = {
    "long": "+491702222222",
    "greek": "+306912345678",
    "cyrillic": "+78121234567",
    "cjk": "+819012345678",
    "arabic": "+201001234567",
}


def _files(w: World) -> dict[str, bytes]:
    return {p.stem: p.read_bytes() for p in w.pdas["pda1"].dir.contacts.glob("*.vcf")}


def _record_of(w: World, number: str) -> int:
    (n,) = [n for n, (_, num) in w.card.records().items() if num == number]
    return n


def _lines(data: bytes) -> list[str]:
    return data.decode("utf-8").splitlines(keepends=True)


async def _setup(tmp_path: Path) -> World:
    w = World(tmp_path, records=40)
    for n in range(1, 6):
        w.card.write(n, f"Filler {n}", f"+3100000{n}")
    pda = await w.add_pda("pda1")
    for uid, text in RICH.items():
        pda.write_vcf(uid, text)
    first = await w.sync("pda1")
    assert first["ok"], first["error"]
    assert first["mode"] == "slow"
    assert first["to_card"]["added"] == len(RICH)
    return w


async def test_rich_vcards_survive_many_syncs_byte_for_byte(tmp_path: Path) -> None:
    w = await _setup(tmp_path)
    try:
        originals = {uid: text.encode() for uid, text in RICH.items()}
        card = w.card.records()
        for uid, text in RICH.items():
            full = parse_card(text).projection.name
            assert card[_record_of(w, NUMBERS[uid])] == (fit_name(full, 18), NUMBERS[uid])
        assert card[_record_of(w, NUMBERS["long"])][0] != "Maximilian Alexander von Hohenzollern"

        for round_ in range(10):
            # Unrelated edits on the card between syncs, as another terminal would make them.
            w.card.write(1 + round_ % 5, f"Filler {round_}", f"+3199999{round_}")
            w.card.write(30 + round_ % 3, None if round_ % 2 else f"Temp {round_}", "+3177")
            res = await w.sync("pda1")
            assert res["ok"], res["error"]
            assert res["mode"] == "fast"
            assert res["to_card"] == {"added": 0, "modified": 0, "deleted": 0}
            files = _files(w)
            for uid, data in originals.items():
                assert files[uid] == data, f"round {round_}: {uid}.vcf changed"
        # And a slow sync (a full comparison by content) changes nothing either.
        res = await w.sync("pda1", "slow")
        assert res["ok"], res["error"]
        assert res["to_pda"]["modified"] == res["to_card"]["modified"] == 0
        assert all(_files(w)[uid] == data for uid, data in originals.items())
    finally:
        await w.close()


def _changed_properties(before: bytes, after: bytes) -> set[str]:
    old, new = _lines(before), _lines(after)
    assert len(old) == len(new), "lines were added or removed"
    return {o.split(":", 1)[0].split(";", 1)[0] for o, n in zip(old, new, strict=True) if o != n}


async def test_a_card_edit_changes_only_fn_n_and_the_preferred_tel(tmp_path: Path) -> None:
    w = await _setup(tmp_path)
    try:
        originals = _files(w)
        # A person renames the Greek contact and changes its number on the phone.
        greek = _record_of(w, NUMBERS["greek"])
        w.card.write(greek, "Αλέκος", "+306999999999")
        # On the long-named contact only the number changes: the card keeps its short name.
        long_rec = _record_of(w, NUMBERS["long"])
        short, _ = w.card.records()[long_rec]
        w.card.write(long_rec, short, "+491709999999")
        res = await w.sync("pda1")
        assert res["ok"], res["error"]
        assert res["to_pda"] == {"added": 0, "modified": 2, "deleted": 0}

        files = _files(w)
        # N was FN's own split (family;given), so it follows the new FN.
        assert _changed_properties(originals["greek"], files["greek"]) == {"FN", "N", "TEL"}
        assert "FN:Αλέκος\r\n" in _lines(files["greek"])
        assert f"N:{derive_n('Αλέκος')}\r\n" in _lines(files["greek"])
        assert "TEL;VALUE=uri;PREF=1;TYPE=cell:tel:+306999999999\r\n" in _lines(files["greek"])
        assert "TEL;VALUE=uri;PREF=2;TYPE=home:tel:+302101234567\r\n" in _lines(files["greek"])
        # The shortened name never flows back: only the preferred TEL line moved.
        assert _changed_properties(originals["long"], files["long"]) == {"TEL"}
        assert "TEL;TYPE=CELL,pref:+491709999999\r\n" in _lines(files["long"])
        for uid in ("cyrillic", "cjk", "arabic"):
            assert files[uid] == originals[uid]

        edited = files
        for round_ in range(10):
            w.card.write(1 + round_ % 5, f"Other {round_}", f"+3188888{round_}")
            res = await w.sync("pda1")
            assert res["ok"], res["error"]
            assert res["to_card"] == {"added": 0, "modified": 0, "deleted": 0}
            assert {uid: _files(w)[uid] for uid in RICH} == {uid: edited[uid] for uid in RICH}
        assert parse_card(edited["long"].decode()).projection.name == (
            "Maximilian Alexander von Hohenzollern"
        )
    finally:
        await w.close()
