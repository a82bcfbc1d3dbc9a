"""Run by test_image.py: writes to an image forever, printing each step, until killed.

Lines: ``W rec hex`` before an UPDATE RECORD and ``A rec`` after its 9000;
``S partner hex`` before a STORESYNC of that object and ``T partner`` after its 9000.
"""

from __future__ import annotations

import random
import sys

from simcard import open_image

from ._apdu import ADN, TELECOM, newsync, select, storesync, update, verify

PARTNERS = [b"p0", b"p1", b"p2"]


def main(path: str, seed: int, records: int, length: int) -> None:
    rng = random.Random(seed)
    card = open_image(path)
    verify(card)
    select(card, 0, TELECOM, ADN)
    print("READY", flush=True)
    n = 0
    while True:
        n += 1
        if rng.random() < 0.2:
            partner = rng.choice(PARTNERS)
            ns = newsync(card, 0, partner)
            print(f"S {partner.decode()} {ns.proposed.hex()}", flush=True)
            assert storesync(card, 0, ns.proposed) == 0x9000
            print(f"T {partner.decode()}", flush=True)
            continue
        rec = rng.randrange(1, records + 1)
        data = (b"\xff" * length) if rng.random() < 0.2 else rng.randbytes(length)
        print(f"W {rec} {data.hex()}", flush=True)
        update(card, 0, rec, data)
        print(f"A {rec}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
