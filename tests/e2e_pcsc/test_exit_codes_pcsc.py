"""`simsync sync` exit statuses and error codes, with the real card and PDA processes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from simcard import create_image
from tests.e2e_pcsc.rig import PdaProc, Phone, cli
from tests.fixtures.pcsc import ServedCard


def test_bad_config_exits_78_naming_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "phone.toml"
    config.write_text('[node]\nid = "phone"\ncolour = "red"\n')
    proc = cli("sync", "--config", str(config), "--json")
    assert proc.returncode == 78
    assert proc.stdout == ""
    assert str(config) in proc.stderr
    assert "node.colour" in proc.stderr
    assert "Traceback" not in proc.stderr

    missing = tmp_path / "nope.toml"
    proc = cli("sync", "--config", str(missing))
    assert proc.returncode == 78
    assert str(missing) in proc.stderr
    assert "Traceback" not in proc.stderr


def test_error_codes_and_exit_statuses(
    serve_card: Callable[..., ServedCard],
    pda_proc: Callable[[str], PdaProc],
    tmp_path: Path,
) -> None:
    image = tmp_path / "card.img"
    create_image(image, records=20, pin="24681357")
    served = serve_card(image)
    init = cli("pda", "init", str(tmp_path / "pda1"), check=True)
    assert cli("pda", "id", str(tmp_path / "pda1"), check=True).stdout == init.stdout
    assert cli("pda", "init", str(tmp_path / "pda1")).returncode == 1  # never re-initialised
    pda = pda_proc("pda1")  # opens the directory the CLI made
    assert pda.device_id == init.stdout.strip()
    phone = Phone(tmp_path / "phone", reader=served.reader, pin="13572468")  # the wrong PIN
    phone.pair("pda1", pda, allow=False)  # not serving yet, not allowed yet

    # The card comes first: a wrong PIN, tries left in the message, the PIN itself nowhere.
    proc = phone.sync_proc("pda1")
    result = json.loads(proc.stdout)
    assert proc.returncode == 1
    assert result["ok"] is False
    assert result["error"]["code"] == "pin_rejected"
    assert "tries left: 2" in result["error"]["message"]
    assert "13572468" not in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr

    # Right PIN, but nobody listens at the PDA's address.
    phone.pin_file.write_text("24681357\n")
    proc = phone.sync_proc("pda1")
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["error"]["code"] == "pda_unreachable"
    assert "24681357" not in proc.stdout + proc.stderr

    # Serving, but this phone is not allowed: the TLS handshake refuses it.
    pda.start()
    phone.write_config()
    proc = phone.sync_proc("pda1")
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["error"]["code"] == "peer_rejected"

    phone.pair("pda1", pda)
    proc = phone.sync_proc("pda1")
    assert proc.returncode == 0, proc.stdout
    result = json.loads(proc.stdout)
    assert set(result) == {
        "id", "pda", "ok", "mode", "to_pda", "to_card", "conflicts", "skipped", "set_aside",
        "apdus", "duration_ms", "started_at", "finished_at", "error",
    }  # fmt: skip
    assert (result["ok"], result["error"], result["pda"]) == (True, None, "pda1")
    # The right PIN reset the counter: a wrong one now has 2 tries left again.
    phone.pin_file.write_text("13572468\n")
    proc = phone.sync_proc("pda1")
    assert "tries left: 2" in json.loads(proc.stdout)["error"]["message"]
