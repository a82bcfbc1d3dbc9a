"""The phone's identity is loaded once per process while its files stay as they were."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from daemon.sync import phone_identity
from tests.e2e.harness import world
from tests.fixtures.identity import count_loads
from transports import Identity
from transports.identity import CERT_FILE, KEY_FILE


async def test_syncs_load_the_identity_once_until_its_files_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Counted where OpenSSL reads both files into a throwaway context (~2 ms a load).
    loads = count_loads(monkeypatch)
    async with world(tmp_path) as w:
        folder = w.state_dir / "identity"

        def phone_loads() -> int:
            return sum(1 for cert in loads if cert.parent == folder)

        pda = await w.add_pda("pda1")  # pairing asks for the phone's id: the first load
        pda.add("Carol", "+4433333")
        assert phone_loads() == 1
        for _ in range(2):
            assert (await w.sync("pda1"))["ok"]
        assert phone_loads() == 1  # two syncs, no load

        # A new identity put in place (files replaced, as a restore would): loaded again.
        new = Identity.load_or_create(tmp_path / "new-identity")
        for name in (KEY_FILE, CERT_FILE):
            os.replace(new.cert_path.parent / name, folder / name)
        pda.dir.allow(new.device_id)
        res = await w.sync("pda1")
        assert res["ok"], res["error"]
        assert phone_loads() == 2
        assert phone_identity(w.config()).device_id == new.device_id
        assert (await w.sync("pda1"))["ok"]
        assert phone_loads() == 2
