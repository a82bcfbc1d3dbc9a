"""Several `simsync sync` at once on one card and one PDA: serialised, or a clear `busy`."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from daemon.config import load_config
from daemon.runlock import lock_path, locks_for
from simcard import create_image
from tests.e2e_pcsc.rig import PdaProc, Phone, Terminal, fill_image, vcard
from tests.fixtures.pcsc import PcscConnection, ServedCard


def _setup(
    serve_card: Callable[..., ServedCard], pda_proc: Callable[[str], PdaProc], tmp_path: Path
) -> tuple[ServedCard, PdaProc, Phone]:
    image = tmp_path / "card.img"
    create_image(image, records=30)
    fill_image(image, {n: (f"Person {n}", f"+49{n:06d}") for n in range(1, 11)})
    served = serve_card(image)
    pda = pda_proc("pda1")
    pda.write_vcf("carol.vcf", vcard("carol", "Carol", "+4433333"))
    pda.start()
    phone = Phone(tmp_path / "phone", reader=served.reader)
    phone.pair("pda1", pda)
    return served, pda, phone


def test_three_syncs_at_once_all_succeed_one_after_another(
    serve_card: Callable[..., ServedCard],
    pcsc_connect: Callable[[str], PcscConnection],
    pda_proc: Callable[[str], PdaProc],
    tmp_path: Path,
) -> None:
    served, pda, phone = _setup(serve_card, pda_proc, tmp_path)
    for _round in range(2):  # the first round is slow syncs (long), the second fast
        with ThreadPoolExecutor(3) as pool:
            procs = list(pool.map(lambda _: phone.sync_proc("pda1"), range(3)))
        for proc in procs:
            result = json.loads(proc.stdout)
            assert proc.returncode == 0, (result, proc.stderr)
            assert result["ok"] is True
    term = Terminal(pcsc_connect(served.reader))
    names = term.names()
    assert names["Carol"] == 1
    assert all(names[f"Person {n}"] == 1 for n in range(1, 11))
    assert sorted(pda.names().elements()) == sorted(names.elements())


@contextmanager
def _held(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)


def test_a_sync_that_cannot_get_the_card_or_the_pda_in_time_is_busy(
    serve_card: Callable[..., ServedCard],
    pda_proc: Callable[[str], PdaProc],
    tmp_path: Path,
) -> None:
    _served, _pda, phone = _setup(serve_card, pda_proc, tmp_path)
    config = load_config(phone.config)
    card, pda = locks_for(config, config.pda("pda1"))
    state = config.node.state_dir
    for kind, key, what in (card, pda):
        with _held(lock_path(state, kind, key)):
            proc = phone.sync_proc("pda1", "--wait", "0.3")
            assert proc.returncode == 1, proc.stdout
            error = json.loads(proc.stdout)["error"]
            assert error["code"] == "busy"
            assert what in error["message"]
            assert f"process {os.getpid()}" in error["message"]
            assert "--wait" in error["message"]
    # Released (as when the other sync ends or is killed): the next sync runs.
    assert phone.sync("pda1")["ok"] is True
