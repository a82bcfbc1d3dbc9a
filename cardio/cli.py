"""``simsync card dump``: read the phonebook through PC/SC (via the local copy) and print it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# The card session, its state file, asyncio and json load when `card dump` runs, not
# when the parser is built (`simsync card --help` must stay quick).

__all__ = ["decode_phonebook", "register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``card dump``."""
    p = sub.add_parser(
        "dump",
        help="print the card's phonebook (read through PC/SC, via the local copy)",
        description=(
            "Read EF.ADN through a PC/SC reader and print every non-empty record. Only "
            "records changed since this host last looked are read from the card; the rest "
            "comes from the local copy in the state directory."
        ),
    )
    p.add_argument("--reader", required=True, help="substring of the PC/SC reader name")
    p.add_argument("--pin-file", type=Path, help="file holding the PIN (first line, 4-8 digits)")
    p.add_argument("--json", action="store_true", help='print [{"record", "name", "number"}]')
    p.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where the local copy lives (default: /var/lib/simsync as root, else "
        "$XDG_STATE_HOME/simsync)",
    )
    p.set_defaults(func=_dump)


def _dump(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from cardio import errors
    from cardio.hostfiles import default_state_dir, read_pin
    from cardio.localcopy import StateError

    try:
        pin = read_pin(args.pin_file) if args.pin_file else None
        state_dir: Path = args.state_dir or default_state_dir()
        rows = asyncio.run(_read_phonebook(args.reader, pin, state_dir))
    except errors.PinRejected as exc:
        left = "unknown" if exc.tries_left is None else str(exc.tries_left)
        print(f"simsync card dump: PIN rejected; tries left: {left}", file=sys.stderr)
        return 3
    except errors.SecurityNotSatisfied:
        print("simsync card dump: the card needs its PIN: give --pin-file", file=sys.stderr)
        return 3
    except errors.CardBlocked:
        print(
            "simsync card dump: the card's PIN is blocked (unblock it with the PUK)",
            file=sys.stderr,
        )
        return 3
    except (errors.CardioError, StateError, OSError) as exc:
        print(f"simsync card dump: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
    else:
        for row in rows:
            print(f"{row['record']:>3}  {row['name']:<24}  {row['number']}")
    return 0


async def _read_phonebook(reader: str, pin: str | None, state_dir: Path) -> list[dict[str, object]]:
    from cardio.link import CardLink
    from cardio.localcopy import CardStateDB
    from cardio.pcsc import PcscLink
    from cardio.session import PhonebookCard

    link: CardLink = PcscLink(reader)
    await link.open()  # before any state is written: a wrong reader changes nothing
    try:
        state = CardStateDB(state_dir / "cards.sqlite")
        try:
            card = await PhonebookCard.open(link, state, pin=pin, host_partner=state.host_partner())
            try:
                await card.refresh()
                content = card.cached()
            finally:
                await card.close()  # a channel left open stays open on the card until reset
        finally:
            state.close()
    finally:
        await link.close()
    return decode_phonebook(content)


def decode_phonebook(content: dict[int, bytes]) -> list[dict[str, object]]:
    """Non-empty records as ``{"record", "name", "number"}``; undecodable ones say so."""
    from cardio.codecs import AdnRecord, CodecError

    rows: list[dict[str, object]] = []
    for n in sorted(content):
        try:
            rec = AdnRecord.decode(content[n])
        except CodecError as exc:
            rows.append({"record": n, "name": "", "number": "", "error": str(exc)})
            continue
        if rec is not None:
            rows.append({"record": n, "name": rec.name, "number": rec.number})
    return rows
