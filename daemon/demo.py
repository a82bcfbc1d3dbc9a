"""``simsync demo``: the whole product with no hardware and no servers to install.

A demo directory holds an emulated SIM card image (driven in-process, no PC/SC),
a PDA directory (vdir + identity), and a phone config that points at both. The
PDA is served on loopback TCP with mutual TLS inside this process, and two syncs
run: the first is slow (nothing shared yet) or fast on reruns, the second fast.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from cardio.codecs import AdnRecord
from cardio.inproc import InProcessLink
from cardio.session import ADN_PATH
from cardio.sim import Sim
from daemon.config import load_config
from daemon.result import format_result
from daemon.sync import phone_identity, run_sync
from pda.node import PdaDir, PdaServer
from simcard import create_image, open_image

__all__ = ["default_demo_dir", "run_demo"]

DEMO_PIN = "0000"
CARD_CONTACTS = (
    (1, "Alice Martin", "+33612345678"),
    (2, "Bob", "0612345679"),
    (3, "Δημήτρης", "+302101234567"),
    (4, "Voicemail", "*86"),
)
VCARDS = {
    # Also on the card, same name and number: the slow sync matches it, no duplicate.
    "demo-bob": "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:demo-bob\r\nFN:Bob\r\nN:;Bob;;;\r\n"
    "TEL;TYPE=CELL:0612345679\r\nEMAIL:bob@example.org\r\nEND:VCARD\r\n",
    "demo-carol": "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:demo-carol\r\n"
    "FN:Carol Featherstonehaugh-Smythe\r\nN:Featherstonehaugh-Smythe;Carol;;;\r\n"
    "TEL;TYPE=CELL,PREF:+447700900123\r\nTEL;TYPE=WORK:+442079460000\r\n"
    "EMAIL:carol@example.org\r\nNOTE:Her name is longer than the card's 18 bytes: the card "
    "gets it shortened\\, this file keeps it whole.\r\nEND:VCARD\r\n",
    "demo-yuki": "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:demo-yuki\r\nFN:山田 由紀\r\n"
    "TEL;PREF=1:+81312345678\r\nEND:VCARD\r\n",
    "demo-dave": "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:demo-dave\r\nFN:Dave (no number)\r\n"
    "EMAIL:dave@example.org\r\nEND:VCARD\r\n",
}


def default_demo_dir() -> Path:
    """``$XDG_DATA_HOME/simsync-demo`` (``~/.local/share/simsync-demo``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "simsync-demo"


async def _make_card(image: Path) -> None:
    create_image(image, records=250, pin=DEMO_PIN)
    card = open_image(image)
    try:
        link = InProcessLink(card)
        await link.open()
        sim = Sim(link)
        await sim.select_path(ADN_PATH)
        await sim.verify_pin(DEMO_PIN)
        for n, name, number in CARD_CONTACTS:
            await sim.update_record(n, AdnRecord(name, number).encode(18))
        await link.close()
    finally:
        card.close()


def _make_pda(path: Path) -> PdaDir:
    d = PdaDir.init(path)
    for uid, text in VCARDS.items():
        (d.contacts / f"{uid}.vcf").write_text(text, encoding="utf-8", newline="")
    return d


def _write_config(base: Path, pda_url: str, pda_id: str) -> Path:
    cfg = base / "phone.toml"
    cfg.write_text(
        "# Written by `simsync demo` on every run (the PDA's port changes).\n"
        f'[node]\nid = "demo-phone"\nstate_dir = "phone-state"\n\n'
        f'[card]\nimage = "card.sqlite"\npin_file = "pin"\n\n'
        f'[[pda]]\nname = "demo-pda"\naddress = "{pda_url}"\ndevice_id = "{pda_id}"\n'
        'conflict = "duplicate"\n',
        encoding="utf-8",
    )
    return cfg


def _prepare(base: Path) -> tuple[Path, PdaDir, bool]:
    base.mkdir(parents=True, exist_ok=True)
    image, pda_path = base / "card.sqlite", base / "pda"
    (base / "pin").write_text(DEMO_PIN + "\n", encoding="utf-8")
    (base / "pin").chmod(0o600)
    pda_dir = PdaDir.open(pda_path) if (pda_path / "identity").exists() else _make_pda(pda_path)
    return image, pda_dir, not image.exists()


async def run_demo(base: Path, *, rerun: str = "simsync demo") -> int:
    """Set up (or reuse) ``base``, serve the PDA, run two syncs, print what happened."""
    image, pda_dir, fresh = _prepare(base)
    if fresh:
        await _make_card(image)

    server = PdaServer(pda_dir)
    try:
        url = await server.start("tcp://127.0.0.1:0")
        cfg_path = _write_config(base, url, server.identity.device_id)
        config = load_config(cfg_path)
        pda_dir.allow(phone_identity(config).device_id)
        serving = asyncio.create_task(server.serve_forever())
        print(f"demo directory: {base}{' (new)' if fresh else ' (reused)'}")
        ok = True
        for label in ("first sync", "second sync"):
            result = await run_sync(config, "demo-pda", "auto")
            print(f"\n== {label}\n{format_result(result)}")
            ok = ok and result.ok
        serving.cancel()
    finally:
        await server.close()
    vcfs = sorted(pda_dir.contacts.glob("*.vcf"))
    named = [p for p in vcfs if p.name == "demo-bob.vcf"] or vcfs
    example = named[0] if named else pda_dir.contacts / "demo-bob.vcf"
    print(
        f"\nTry a change, then run `{rerun}` again to see a fast sync move only it:\n"
        f"  - edit a contact's FN or TEL in {example}, or add a .vcf file to {pda_dir.contacts}\n"
        f"  - or change the card: `simsync card serve {image}` puts it in a PC/SC reader\n"
        f"  - see the card: `simsync card info {image}`\n"
        f"  - or run the two sides yourself: `simsync pda serve {pda_dir.path} --listen {url}`\n"
        f"    and, in another shell, `simsync sync --config {base / 'phone.toml'} --json`",
        file=sys.stdout,
    )
    return 0 if ok else 1
