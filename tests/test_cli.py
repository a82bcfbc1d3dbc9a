from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from daemon import cli
from daemon.cli import build_parser, main
from tests.fixtures.pcsc import REPO


def test_help_lists_every_room(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "card" in out
    assert "pda" in out


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["frobnicate"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_the_program_ends_the_ordinary_way_while_another_thread_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `simsync` skips the interpreter's teardown (os._exit) only when nothing else runs:
    # a live thread is joined by the ordinary exit instead of being cut off.
    def cut_off(status: int) -> None:
        raise AssertionError(f"os._exit({status}) with a thread alive")

    monkeypatch.setattr("daemon.cli.os._exit", cut_off)
    release = threading.Event()
    worker = threading.Thread(target=release.wait)
    worker.start()
    try:
        with pytest.raises(SystemExit) as exc:
            cli._exit(3)
    finally:
        release.set()
        worker.join()
    assert exc.value.code == 3


def test_the_program_ends_cleanly_with_stdout_closed(tmp_path: Path) -> None:
    # Started with descriptor 1 closed, sys.stdout is None: nothing to flush at the end.
    config = tmp_path / "phone.toml"
    config.write_text(
        f'[node]\nid = "x"\nstate_dir = "{tmp_path / "state"}"\n'
        '[[pda]]\nname = "p"\naddress = "tcp://127.0.0.1:9"\n'
        f'device_id = "{"ab" * 32}"\n'
    )
    argv = [sys.executable, "-m", "daemon.cli", "check-config", str(config)]
    shown = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    closed = subprocess.run(
        ["sh", "-c", 'exec "$@" >&-', "sh", *argv],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert "usable" in shown.stdout
    assert (closed.returncode, closed.stderr) == (shown.returncode, shown.stderr)
