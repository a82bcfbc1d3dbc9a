"""The unit files in systemd/: `systemd-analyze verify` clean, security exposure <= 2.0.

`verify` exits 0 on parse warnings, so any stderr fails the test; it also checks that
every Exec*= binary exists, so the units are checked with /opt/simsync/bin/simsync
pointed at this checkout's installed `simsync` (the only line that differs).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNITS = ("simsync.service", "simsync-pda.service", "simsync-card.service")
INSTALLED = "/opt/simsync/bin/simsync"
ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"


@pytest.fixture(scope="module")
def simsync_bin() -> Path:
    path = Path(sys.executable).parent / "simsync"
    assert path.exists(), f"{path} missing: install the project (bash scripts/dev.sh setup)"
    return path


@pytest.fixture
def unit_dir(tmp_path: Path, simsync_bin: Path) -> Path:
    """The units as they would be installed, with ExecStart at this checkout's simsync."""
    for name in UNITS:
        text = (REPO / "systemd" / name).read_text()
        assert INSTALLED in text, f"{name} should run {INSTALLED}"
        (tmp_path / name).write_text(text.replace(INSTALLED, str(simsync_bin)))
    return tmp_path


def analyze(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ANALYZE, *argv], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("unit", UNITS)
def test_verify_is_clean(unit_dir: Path, unit: str) -> None:
    done = analyze("verify", f"./{unit}", cwd=unit_dir)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr


def test_verify_catches_a_bad_unit(unit_dir: Path) -> None:
    """The gate above can fail: a typo and a missing binary both reach stderr."""
    text = (unit_dir / "simsync.service").read_text()
    (unit_dir / "broken.service").write_text(
        text.replace("NoNewPrivileges=yes", "NoNewPrivilege=yes").replace(
            "simsync daemon", "simsync-missing daemon"
        )
    )
    done = analyze("verify", "./broken.service", cwd=unit_dir)
    assert "NoNewPrivilege" in done.stderr
    assert "simsync-missing" in done.stderr


# `--threshold` counts tenths: the 0-100 scale behind the 0.0-10.0 shown. The issue's
# "≤ 2.0" is therefore --threshold=20; --threshold=2 would demand 0.2, which nothing
# that runs a program reaches (a fully locked unit still scores ~1).
THRESHOLD_2_0 = "--threshold=20"


def exposure(unit: str, unit_dir: Path, threshold: str) -> tuple[int, float, str]:
    done = analyze("security", "--offline=yes", threshold, f"./{unit}", cwd=unit_dir)
    level = re.search(r"Overall exposure level for \S+: ([0-9.]+)", done.stdout)
    assert level is not None, done.stdout[-2000:] + done.stderr
    assert done.stderr == "", done.stderr
    return done.returncode, float(level[1]), done.stdout


@pytest.mark.parametrize("unit", UNITS)
def test_security_exposure_at_most_2(unit_dir: Path, unit: str) -> None:
    rc, level, out = exposure(unit, unit_dir, THRESHOLD_2_0)
    assert level <= 2.0, out
    assert rc == 0, out


def test_security_threshold_counts_tenths(unit_dir: Path) -> None:
    """The gate can fail: just below the unit's own level it does."""
    _rc, level, _ = exposure("simsync.service", unit_dir, THRESHOLD_2_0)
    below = f"--threshold={round(level * 10) - 1}"
    rc, _, out = exposure("simsync.service", unit_dir, below)
    assert rc != 0, out


def test_security_gate_fails_an_unhardened_unit(unit_dir: Path, simsync_bin: Path) -> None:
    (unit_dir / "bare.service").write_text(f"[Service]\nExecStart={simsync_bin} --version\n")
    rc, level, _ = exposure("bare.service", unit_dir, THRESHOLD_2_0)
    assert (rc != 0, level > 9.0) == (True, True)


def test_daemon_unit_contract() -> None:
    """What the daemon relies on from its unit (issue 7 item 5), read from the file."""
    text = (REPO / "systemd" / "simsync.service").read_text()
    keys = dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and line[0].isalpha()
    )
    assert keys["Type"] == "notify"
    assert keys["NotifyAccess"] == "main"
    assert keys["WatchdogSec"].endswith("s")
    assert keys["Restart"] == "on-failure"
    assert keys["RestartPreventExitStatus"] == "78"
    assert keys["StateDirectory"] == "simsync"
    assert "-HUP" in keys["ExecReload"]
    creds = [v for k, v in (ln.split("=", 1) for ln in text.splitlines() if "=" in ln)]
    assert "pin:/etc/simsync/pin" in creds
    assert "mqtt-password:/etc/simsync/mqtt-password" in creds
    sysusers = (REPO / "systemd" / "simsync.sysusers").read_text()
    assert re.search(rf"^u {keys['User']}\s", sysusers, re.M)
