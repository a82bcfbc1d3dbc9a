"""PC/SC gone right after the card answered STORESYNC: the sync that committed is reported ok.

Real pcscd + vpcd + ``simsync card serve``, a real ``PdaServer`` over TCP + TLS, the
phone's ``run_sync`` in process. The only help from the test: the phone's PC/SC link
stops pcscd (by PID) in the gap between STORESYNC's answer and that command's
``SCardEndTransaction``, which pcsc-lite then really fails (the service is gone).
Nothing else can put an event in that gap without a sleep.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from cardio.pcsc import PcscLink
from daemon.config import load_config
from daemon.conversation import DB_ADN
from daemon.sync import phone_identity, run_sync
from simcard import DEFAULT_ICCID, create_image
from tests.e2e.harness import Pda
from tests.fixtures.pcsc import Pcscd, ServedCard

pytestmark = pytest.mark.pcsc

INS_STORESYNC = 0x3E


def stopping_after_storesync(pcscd: Pcscd, stopped: list[int]) -> type[PcscLink]:
    """A real PC/SC link class that stops `pcscd` once the card has answered STORESYNC,
    before the link ends that command's transaction (each stop appended to `stopped`)."""

    class Link(PcscLink):
        last_ins: int | None = None

        def _exchange_blocking(self, apdu: bytes, *, begin: bool = False) -> bytes:
            answer = super()._exchange_blocking(apdu, begin=begin)
            self.last_ins = apdu[1]
            return answer

        def _end_blocking(self) -> None:
            if self.last_ins == INS_STORESYNC and not stopped:
                pcscd.stop()
                stopped.append(pcscd.pid)
            super()._end_blocking()

    return Link


async def test_storesync_committed_then_pcscd_gone_is_ok_and_the_next_sync_is_fast(
    pcscd: Pcscd,
    serve_card: Callable[..., ServedCard],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    image = tmp_path / "card.img"
    create_image(image, records=20)
    served = serve_card(image)
    (tmp_path / "pin").write_text("0000\n")
    pda = Pda(tmp_path / "pda")
    url = await pda.start()
    config_path = tmp_path / "phone.toml"
    config_path.write_text(
        f'[node]\nid = "phone"\nstate_dir = "{tmp_path / "phone"}"\n'
        f'[card]\nreader = "{served.reader}"\npin_file = "{tmp_path / "pin"}"\n'
        f'[[pda]]\nname = "pda"\naddress = "{url}"\ndevice_id = "{pda.device_id}"\n'
    )
    config = load_config(config_path)
    pda.dir.allow(phone_identity(config).device_id)
    try:
        pda.add("Alice", "+4911111")
        first = await run_sync(config, "pda")
        assert (first.ok, first.mode) == (True, "slow"), first.error

        pda.add("Bob", "+4922222")
        stopped: list[int] = []
        monkeypatch.setattr("cardio.pcsc.PcscLink", stopping_after_storesync(pcscd, stopped))
        try:
            with capture_logs() as logs:
                second = await run_sync(config, "pda")
        finally:
            monkeypatch.undo()
            if pcscd.proc is None or pcscd.proc.poll() is not None:
                pcscd.start()
            served.wait_present()
        assert len(stopped) == 1
        # The card stored the sync object and the PDA heard Committed: ok, not no_card.
        assert second.ok, second.error
        assert (second.mode, second.to_card.added) == ("fast", 1)
        lost = [e for e in logs if e["event"] == "card link lost after a command that succeeded"]
        assert [e["log_level"] for e in lost] == ["warning"]
        assert "ending a PC/SC transaction" in lost[0]["error"]
        assert pda.server is not None
        held = pda.server.state.load(DEFAULT_ICCID, DB_ADN)
        assert held.pending is None  # promoted at Committed
        assert held.last is not None

        # Both ends hold the same anchor: the next sync is fast and has nothing to move.
        third = await run_sync(config, "pda")
        assert (third.ok, third.mode) == (True, "fast"), third.error
        assert third.to_card.added + third.to_card.modified + third.to_card.deleted == 0
        assert third.to_pda.added + third.to_pda.modified + third.to_pda.deleted == 0
    finally:
        await pda.stop()
