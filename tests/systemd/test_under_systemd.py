"""The units of systemd/ started by a real systemd, hardening and all (issue 7 item 5).

`systemd-analyze verify` and `security --offline` (test_units.py) read the files;
they cannot tell whether `SystemCallFilter=`, `MemoryDenyWriteExecute=`,
`PrivateDevices=`/`PrivateUsers=` next to pcscd's socket, `DynamicUser=` with
`StateDirectory=`, or `LoadCredential=` let the programs actually run. Here Debian's
systemd boots as PID 1 of a container (tests/systemd/machine.py), the units are
installed as systemd/README.md says (sysusers, /etc/simsync with root-only secrets,
/opt/simsync), and started: the emulated card (simsync-card.service) in the
container's own socket-activated pcscd + vpcd, the PDA (simsync-pda.service), a
mosquitto that wants a password, and the phone daemon (simsync.service).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.pcsc import wait_until
from tests.systemd.machine import REPO, SIMSYNC, LineStream, Machine

pytestmark = pytest.mark.pcsc  # a pcscd (the container's own): PC/SC tests run together

PIN = "0000"  # the PIN `simsync card init` gives simsync-card.service's card
MQTT_PASSWORD = "broker-secret-7f3a"
OBSERVER = ("observer", "observer-secret-91c2")
ROOT = "simsync/phone1"
PRIORITY = {"debug": "7", "info": "6", "warning": "4", "error": "3", "critical": "2"}

CARD_STATE = "/var/lib/simsync-card"
PDA_DIR = "/var/lib/simsync-pda"
CONFIG = "/etc/simsync/simsync.toml"
VCARD = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:carol\r\nFN:Carol\r\nN:;Carol;;;\r\n"
VCARD += "TEL:+4433333\r\nEND:VCARD\r\n"


def phone_config(pda_id: str) -> str:
    """The phone's config as systemd/README.md writes it: secrets as credentials."""
    return f"""
[node]
id = "phone1"
state_dir = "/var/lib/simsync"
[card]
reader = "Virtual PCD 00 00"
pin_file = "${{CREDENTIALS_DIRECTORY:-/etc/simsync}}/pin"
[[pda]]
name = "pda1"
address = "tcp://127.0.0.1:7878"
device_id = "{pda_id}"
[mqtt]
url = "mqtt://127.0.0.1:1883"
username = "simsync"
password_file = "${{CREDENTIALS_DIRECTORY:-/etc/simsync}}/mqtt-password"
"""


@pytest.fixture
def machine(tmp_path: Path) -> Iterator[Machine]:
    """A booted container with simsync installed as systemd/README.md says."""
    assert shutil.which("systemd-nspawn"), "systemd-nspawn missing: bash scripts/dev.sh setup"
    m = Machine(tmp_path)
    for unit in ("simsync.service", "simsync-pda.service", "simsync-card.service"):
        m.stage_file(f"/etc/systemd/system/{unit}", (REPO / "systemd" / unit).read_text())
    # The one change to the units: a watchdog short enough to see pings within the test.
    dropin = "/etc/systemd/system/simsync.service.d/watchdog.conf"
    m.stage_file(dropin, "[Service]\nWatchdogSec=4s\n")
    # Users come from systemd-sysusers.service at boot, reading the installed file.
    sysusers = (REPO / "systemd/simsync.sysusers").read_text()
    m.stage_file("/usr/lib/sysusers.d/simsync.conf", sysusers)
    m.stage_file("/etc/simsync/pin", PIN + "\n", 0o600)
    m.stage_file("/etc/simsync/mqtt-password", MQTT_PASSWORD + "\n", 0o600)
    m.stage_file(
        "/etc/mosquitto/conf.d/simsync-test.conf",
        "listener 1883 127.0.0.1\nallow_anonymous false\n"
        "password_file /etc/mosquitto/simsync-test.passwd\n",
    )
    m.stage_file("/etc/mosquitto/simsync-test.passwd", "", 0o600, owner="mosquitto:")
    passwd = m.stage / "etc/mosquitto/simsync-test.passwd"
    for user, password in (("simsync", MQTT_PASSWORD), OBSERVER):
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True)
    try:
        m.boot()
        yield m
    finally:
        m.close()


def mqtt(line: str) -> tuple[str, dict[str, Any]]:
    topic, _, payload = line.partition(" ")
    return topic, json.loads(payload) if payload.startswith("{") else {}


def expect(observer: LineStream, topic: str, **want: object) -> dict[str, Any]:
    """Read the observer until a message on ``topic`` whose payload has ``want``."""

    def match(line: str) -> bool:
        got_topic, payload = mqtt(line)
        return got_topic == topic and all(payload.get(k) == v for k, v in want.items())

    return mqtt(observer.until(match))[1]


def install_pda(m: Machine) -> str:
    """`simsync pda init` as simsync-pda, with one contact waiting; the PDA's device id."""
    m.run("install", "-d", "-o", "simsync-pda", "-g", "simsync-pda", "-m", "700", PDA_DIR)
    m.as_user("simsync-pda", SIMSYNC, "pda", "init", PDA_DIR)
    m.run("runuser", "-u", "simsync-pda", "--", "sh", "-c",
          f"cat > {PDA_DIR}/contacts/carol.vcf", input=VCARD)  # fmt: skip
    return m.as_user("simsync-pda", SIMSYNC, "pda", "id", PDA_DIR)


def install_phone(m: Machine, pda_id: str) -> None:
    m.path(CONFIG).write_text(phone_config(pda_id))
    m.run("install", "-d", "-o", "simsync", "-g", "simsync", "-m", "700", "/var/lib/simsync")
    phone_id = m.as_user("simsync", SIMSYNC, "id", "--config", CONFIG)
    m.as_user("simsync-pda", SIMSYNC, "pda", "allow", PDA_DIR, phone_id)


def test_units_run_under_systemd(machine: Machine) -> None:
    m = machine
    assert m.run("getent", "passwd", "simsync", "simsync-pda").stdout.count("\n") == 2
    install_phone(m, install_pda(m))
    m.run("systemctl", "start", "mosquitto.service", "simsync-pda.service")

    # The emulated card alone: its unit must bring pcscd up (socket activation alone
    # would leave vpcd's port closed until some PC/SC client came by).
    card_log = m.stream("journalctl", "--follow", "--lines=all", "--output=cat",
                        "_SYSTEMD_UNIT=simsync-card.service")  # fmt: skip
    m.run("systemctl", "start", "simsync-card.service")
    card_log.until(lambda line: "vpcd connected" in line, timeout=20)
    assert m.show("simsync-card.service", "ActiveState")["ActiveState"] == "active"
    # DynamicUser= + StateDirectory=: ExecStartPre made the image as the dynamic user.
    assert 61184 <= m.path(f"{CARD_STATE}/card.img").stat().st_uid <= 65519

    # The rig enforces IP firewalls (BPF on the unit's cgroup), so the card unit's
    # IPAddressDeny=any has been in force: the PDA's port on a non-loopback address
    # is reached, but not under that setting.
    m.run("ip", "address", "add", "192.0.2.1/32", "dev", "lo")
    connect = "import socket; socket.create_connection(('192.0.2.1', 7878), timeout=1)"
    firewalled = ["--property=IPAddressDeny=any", "--property=IPAddressAllow=localhost"]
    for props, want in (([], 0), (firewalled, 1)):
        run = m.run("systemd-run", "--wait", "--quiet", *props, "python3", "-c", connect,
                    check=False)  # fmt: skip
        assert run.returncode == want, run.stderr

    # A config that does not load: exit 78, said at priority error, and no restart
    # even scheduled (RestartPreventExitStatus=78: failed, not auto-restart).
    good = m.path(CONFIG).read_text()
    m.path(CONFIG).write_text(good + "\n[mqtt\n")
    assert m.run("systemctl", "start", "simsync.service", check=False).returncode != 0
    failed = m.show("simsync.service", "ActiveState", "SubState", "ExecMainStatus", "NRestarts")
    assert failed == {
        "ActiveState": "failed", "SubState": "failed", "ExecMainStatus": "78", "NRestarts": "0"
    }  # fmt: skip
    (why,) = journal_lines(m, "simsync.service")
    assert (why["level"], why["event"]) == ("error", "config unusable")
    assert CONFIG in why["error"]
    m.run("systemctl", "reset-failed", "simsync.service")
    m.path(CONFIG).write_text(good)

    observer = m.stream("mosquitto_sub", "-u", OBSERVER[0], "-P", OBSERVER[1],
                        "-t", f"{ROOT}/#", "-v")  # fmt: skip
    # Type=notify: `systemctl start` returns once the daemon said READY=1.
    m.run("systemctl", "start", "simsync.service")
    unit = m.show("simsync.service", "ActiveState", "SubState", "StatusText", "MainPID")
    assert (unit["ActiveState"], unit["SubState"]) == ("active", "running"), unit
    assert "broker connected" in unit["StatusText"]  # the password credential was read
    # WATCHDOG=1 pings reach systemd (NotifyAccess=main, WATCHDOG_USEC from systemd).
    pinged = m.show("simsync.service", "WatchdogTimestampMonotonic")
    wait_until(lambda: m.show("simsync.service", "WatchdogTimestampMonotonic") != pinged,
               10, "a watchdog ping", step=0.1)  # fmt: skip
    expect(observer, f"{ROOT}/status", state="online", card="present")

    # A sync over MQTT: the PIN credential opened the card, Carol went onto it.
    observer_pub(m, {"id": "r1"})
    first = expect(observer, f"{ROOT}/sync/result", id="r1")
    assert first["ok"], first["error"]
    assert (first["mode"], first["to_card"]["added"]) == ("slow", 1)

    # `systemctl reload`: a broken config is refused and said so; a fixed one taken.
    log = m.stream("journalctl", "--follow", "--lines=all", "--output=json",
                   "_SYSTEMD_UNIT=simsync.service")  # fmt: skip
    m.path(CONFIG).write_text(good + "\n[mqtt\n")
    m.run("systemctl", "reload", "simsync.service")
    refused = json.loads(log.until(lambda line: "config reload failed" in line))
    assert refused["PRIORITY"] == PRIORITY["error"]
    assert json.loads(refused["MESSAGE"])["level"] == "error"

    def refused_in_status() -> bool:
        return "config reload failed" in m.show("simsync.service", "StatusText")["StatusText"]

    wait_until(refused_in_status, 10, "the refusal in STATUS=")
    m.path(CONFIG).write_text(good)
    m.run("systemctl", "reload", "simsync.service")
    wait_until(lambda: not refused_in_status(), 10, "STATUS= after a good reload")
    restarts = m.show("simsync.service", "MainPID", "NRestarts")
    assert restarts == {"MainPID": unit["MainPID"], "NRestarts": "0"}  # no restart, no kill

    observer_pub(m, {"id": "r2"})
    second = expect(observer, f"{ROOT}/sync/result", id="r2")
    assert second["ok"], second["error"]
    assert (second["mode"], second["to_card"]["added"]) == ("fast", 0)

    # `systemctl stop`: SIGTERM, `offline` published by the daemon itself (the Last
    # Will knows no last sync), exit 0. systemd counts a death by SIGTERM a success
    # too and forgets a stopped unit's exit status: its debug line tells them apart.
    m.run("systemd-analyze", "log-level", "debug")
    m.run("systemctl", "stop", "simsync.service")
    offline = expect(observer, f"{ROOT}/status", state="offline")
    assert offline["last_sync"]["id"] == "r2"
    manager = m.run("journalctl", "--output=cat", "_PID=1", "UNIT=simsync.service").stdout
    assert "Main process exited, code=exited, status=0/SUCCESS" in manager, manager[-3000:]

    # The journal: every line the daemon and the card wrote is one JSON object, its
    # priority from the <N> prefix (journald strips it), and no secret in any of them.
    errors = [line["event"] for line in journal_lines(m, "simsync.service")]
    said = ["config unusable", "config reload failed; the old config stays"]
    assert [event for event in errors if event in said] == said
    card_events = [line["event"] for line in journal_lines(m, "simsync-card.service")]
    assert "vpcd connected" in card_events
    # The hardened PDA unit (seccomp @system-service, ProcSubset=pid) lets the server
    # watch its vdir with inotify: no fallback to the stat loop was logged in its syncs.
    pda_said = [entry["MESSAGE"] for entry in m.journal("simsync-pda.service")]
    assert any("listening" in line for line in pda_said), pda_said  # its journal is there
    assert not [line for line in pda_said if "vdir not watched" in line]


def journal_lines(m: Machine, unit: str) -> list[dict[str, Any]]:
    """What the unit's processes logged: each entry a JSON line at its own priority."""
    lines = []
    for entry in m.journal(unit):
        line = json.loads(entry["MESSAGE"])
        assert entry["PRIORITY"] == PRIORITY[line["level"]], entry
        assert MQTT_PASSWORD not in entry["MESSAGE"]
        lines.append(line)
    return lines


def observer_pub(m: Machine, payload: dict[str, Any]) -> None:
    m.run("mosquitto_pub", "-u", OBSERVER[0], "-P", OBSERVER[1], "-q", "1",
          "-t", f"{ROOT}/sync/request", "-m", json.dumps(payload))  # fmt: skip
