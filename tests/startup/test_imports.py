"""Each command imports only what it uses: checked in a fresh interpreter, by module name.

Start-up time is what a person waits for before anything happens (``simsync --help``
target: 0.12 s, see bench/startup.py); these tests pin the cause, not the clock.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.fixtures.pcsc import REPO, terminate

TIMEOUT = 60
PYSCARD = "smartcard"
EMULATOR = "simcard"
VCARD = "vobject"
X509 = "cryptography.x509"
BLEAK = "bleak"


def loaded(tmp_path: Path, *args: str, code: int = 0) -> set[str]:
    """The modules a ``simsync ARGS`` process had loaded when it exited."""
    out = tmp_path / "modules.json"
    proc = subprocess.run(
        [sys.executable, "-m", "tests.startup.probe", str(out), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert proc.returncode == code, proc.stderr
    return set(json.loads(out.read_text()))


def pda_serve(pda: Path, *module: str) -> subprocess.Popen[str]:
    """``python -m MODULE... pda serve PDA`` on a free port; it prints "listening URL ID"."""
    return subprocess.Popen(
        [sys.executable, "-m", *module, "pda", "serve", str(pda), "--listen", "tcp://127.0.0.1:0"],
        cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip


def test_help_loads_no_room_but_the_daemons_parser(tmp_path: Path) -> None:
    modules = loaded(tmp_path, "--help")
    heavy = {"asyncio", "structlog", "importlib.metadata", "json", "ssl"}
    # what check-config, type hints and argparse's terminal-width probe would pull in
    heavy |= {"dataclasses", "tomllib", "typing", "shutil"}
    rooms = {"cardio", "pda", "simcard", "transports", "syncproto", PYSCARD, VCARD, "cryptography"}
    assert not modules & (heavy | rooms)


def test_group_help_loads_only_that_group(tmp_path: Path) -> None:
    modules = loaded(tmp_path, "pda", "--help")
    assert "pda.cli" in modules
    assert not modules & {"pda.node", "pda.vdir", VCARD, "cardio", "simcard", PYSCARD, X509}
    modules = loaded(tmp_path, "card", "--help")
    assert {"simcard.cli", "cardio.cli"} <= modules
    # neither the emulator nor the card session, their state files, asyncio or logging
    card = {"simcard.card", "simcard.image", "cardio.session", "cardio.localcopy"}
    assert not modules & (card | {PYSCARD, "sqlite3", "asyncio", "structlog", "pda"})


def test_a_bad_config_loads_neither_card_nor_crypto(tmp_path: Path) -> None:
    config = tmp_path / "phone.toml"
    config.write_text('[node]\nid = "x"\n[[pda]]\nname = "p"\naddress = "tcp://h:1"\n')
    modules = loaded(tmp_path, "sync", "--config", str(config), code=78)
    assert "daemon.config" in modules
    assert not modules & {X509, VCARD, EMULATOR, PYSCARD, "pda", "daemon.sync"}


def test_pda_id_loads_no_card_emulator_and_no_vcard_parser(tmp_path: Path) -> None:
    pda = tmp_path / "pda"
    loaded(tmp_path, "pda", "init", str(pda))
    modules = loaded(tmp_path, "pda", "id", str(pda))
    # The device id is the certificate's hash: ssl reads it, x509 only made it (pda init).
    assert not modules & {EMULATOR, VCARD, "pda.vdir", "pda.engine", "syncproto", X509}


def test_pda_serve_never_loads_pyscard_or_the_card_emulator(tmp_path: Path) -> None:
    pda = tmp_path / "pda"
    loaded(tmp_path, "pda", "init", str(pda))
    out = tmp_path / "serve.json"
    proc = pda_serve(pda, "tests.startup.probe", str(out))
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("listening ")  # the server is up
    finally:
        terminate(proc)
        assert proc.stdout is not None
        proc.stdout.close()
    modules = set(json.loads(out.read_text()))
    assert {"pda.node", "pda.vdir", VCARD} <= modules
    assert not modules & {PYSCARD, EMULATOR}


def test_a_pcsc_sync_loads_neither_vcard_parser_nor_emulator(tmp_path: Path) -> None:
    # No pcscd here: the sync fails at the card, after the sync, card and TLS code loaded.
    (tmp_path / "pin").write_text("0000\n")
    config = tmp_path / "phone.toml"
    config.write_text(
        f'[node]\nid = "x"\nstate_dir = "{tmp_path / "state"}"\n'
        f'[card]\nreader = "No Such Reader"\npin_file = "{tmp_path / "pin"}"\n'
        '[[pda]]\nname = "p"\naddress = "tcp://127.0.0.1:9"\n'
        f'device_id = "{"ab" * 32}"\n'
    )
    modules = loaded(tmp_path, "sync", "--config", str(config), code=1)
    assert {"daemon.sync", "cardio.session", "transports.tls"} <= modules
    assert not modules & {VCARD, EMULATOR, "pda"}
    # The phone never plans; the presence rules are the daemon's watcher's.
    assert not modules & {"syncproto.planner", "daemon.presence_state"}


def daemon_modules(tmp_path: Path, presence: str) -> set[str]:
    """The modules of a `simsync daemon` (card image, no broker) that reached READY=1 and
    stopped on SIGTERM; ``presence`` is appended to its only [[pda]] table."""
    from tests.fixtures.sdnotify import NotifySocket

    config = tmp_path / "phone.toml"
    config.write_text(
        f'[node]\nid = "x"\nstate_dir = "{tmp_path / "state"}"\n'
        f'[card]\nimage = "{tmp_path / "no-card.sqlite"}"\n'
        f'[[pda]]\nname = "p"\naddress = "tcp://127.0.0.1:9"\ndevice_id = "{"ab" * 32}"\n'
        + presence
    )
    out = tmp_path / "daemon.json"
    sock = NotifySocket(tmp_path / "notify.sock")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.startup.probe", str(out), "daemon", "--config", str(config)],
        cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "NOTIFY_SOCKET": sock.address,
             # no Bluetooth here: a watcher would retry, which is all this needs
             "DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={tmp_path}/no-bus"},
    )  # fmt: skip
    try:
        sock.receive_until(lambda m: "READY" in m, TIMEOUT, "READY=1")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(TIMEOUT) == 0
    finally:
        terminate(proc)
        sock.close()
    return set(json.loads(out.read_text()))


def test_the_daemon_loads_bleak_only_to_watch_a_pda(tmp_path: Path) -> None:
    for d in ("none", "off", "on"):
        (tmp_path / d).mkdir()
    assert BLEAK not in daemon_modules(tmp_path / "none", "")
    off = 'ble_identity = "00:11:22:33:44:55"\n[presence]\nenabled = false\n'
    assert BLEAK not in daemon_modules(tmp_path / "off", off)
    watched = daemon_modules(tmp_path / "on", 'ble_identity = "00:11:22:33:44:55"\n')
    assert {BLEAK, "daemon.presence"} <= watched


def simsync(tmp_path: Path, *args: str) -> str:
    """Run ``simsync ARGS`` (not probed); its stdout."""
    proc = subprocess.run(
        [sys.executable, "-m", "daemon.cli", *args],
        cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_a_whole_sync_with_an_identity_never_loads_x509(tmp_path: Path) -> None:
    # x509 makes an identity (`simsync id`, `pda init`); using one needs only ssl + hashlib.
    image, pda = tmp_path / "card.img", tmp_path / "pda"
    (tmp_path / "pin").write_text("0000\n")
    simsync(tmp_path, "card", "init", str(image))
    simsync(tmp_path, "pda", "init", str(pda))
    serve = pda_serve(pda, "daemon.cli")
    try:
        assert serve.stdout is not None
        _, url, pda_id = serve.stdout.readline().split()
        config = tmp_path / "phone.toml"
        config.write_text(
            f'[node]\nid = "x"\nstate_dir = "{tmp_path / "state"}"\n'
            f'[card]\nimage = "{image}"\npin_file = "{tmp_path / "pin"}"\n'
            f'[[pda]]\nname = "p"\naddress = "{url}"\ndevice_id = "{pda_id}"\n'
        )
        phone_id = simsync(tmp_path, "id", "--config", str(config)).split()[-1]
        simsync(tmp_path, "pda", "allow", str(pda), phone_id)
        modules = loaded(tmp_path, "sync", "--config", str(config))
    finally:
        terminate(serve)
        assert serve.stdout is not None
        serve.stdout.close()
    assert {"daemon.sync", "transports.tls", "transports.identity"} <= modules
    assert X509 not in modules
    # With its identity made: tempfile (and shutil, bz2, lzma) only writes one, or
    # records a rejected PIN; the phone never plans.
    assert not modules & {"tempfile", "shutil", "syncproto.planner", "daemon.presence_state"}
