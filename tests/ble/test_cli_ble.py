"""`simsync pda serve DIR --listen ble:` as a user runs it, and BLE addresses in the config."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from daemon.config import ConfigError, load_config
from pda.node import PdaDir
from tests.fixtures.bluez import PDA_ADAPTER, PDA_ADDRESS, BluezMock
from transports import open_transport


async def serve(directory: Path, listen: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "daemon.cli", "pda", "serve", str(directory)),
        *("--listen", listen),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def ended(proc: asyncio.subprocess.Process) -> bytes:
    """Its stderr once it has ended; killed after 60 s, so a hang fails the test and the
    process never outlives it."""
    try:
        async with asyncio.timeout(60):
            _, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return err


async def test_serve_listens_on_ble_and_stops_on_sigterm(bluez: BluezMock, tmp_path: Path) -> None:
    bluez.phone_and_pda()
    d = PdaDir.init(tmp_path / "pda")
    proc = await serve(tmp_path / "pda", f"ble:?adapter={PDA_ADAPTER}")
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(60):
            line = (await proc.stdout.readline()).decode()
        assert line.split() == ["listening", f"ble://{PDA_ADDRESS}", d.identity().device_id]
        link = await open_transport(f"ble://{PDA_ADDRESS}", timeout=10)  # reachable over BLE
        await link.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        err = await ended(proc)
    assert proc.returncode == 0, err.decode()


async def test_serve_on_a_missing_adapter_says_so(bluez: BluezMock, tmp_path: Path) -> None:
    bluez.phone_and_pda()
    PdaDir.init(tmp_path / "pda")
    proc = await serve(tmp_path / "pda", "ble:?adapter=hci7")
    err = await ended(proc)
    assert proc.returncode == 1
    assert "no Bluetooth adapter hci7" in err.decode()
    assert "Traceback" not in err.decode()


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("ble://AA:BB:CC:DD:EE", "not a Bluetooth address"),
        ("ble://AA:BB:CC:DD:EE:FF?adapter=usb0", "adapter must look like hci0"),
        ("ble://AA:BB:CC:DD:EE:FF?speed=2M", "the only option is ?adapter=hciN"),
        ("ble:", "expected ble://AA:BB:CC:DD:EE:FF"),
    ],
)
def test_bad_ble_addresses_are_config_errors(tmp_path: Path, address: str, message: str) -> None:
    path = tmp_path / "phone.toml"
    path.write_text(
        f'[node]\nid = "phone"\nstate_dir = "{tmp_path}"\n'
        f'[[pda]]\nname = "p"\naddress = "{address}"\ndevice_id = "{"ab" * 32}"\n'
    )
    with pytest.raises(ConfigError, match=message.replace("?", r"\?")):
        load_config(path)


def test_a_ble_address_is_accepted_in_any_case(tmp_path: Path) -> None:
    path = tmp_path / "phone.toml"
    path.write_text(
        f'[node]\nid = "phone"\nstate_dir = "{tmp_path}"\n'
        f'[[pda]]\nname = "p"\naddress = "ble://aa:bb:cc:dd:ee:ff"\ndevice_id = "{"ab" * 32}"\n'
    )
    assert load_config(path).pdas[0].address == "ble://aa:bb:cc:dd:ee:ff"
