from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from daemon import cli
from daemon.cli import build_parser, main
from pda import cli as pda_cli
from pda.node import PdaDir, PdaServer
from pda.vdir import FULL_SCAN_EVERY
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


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("-1", "'-1': give 0 (never) or a positive number"),
        ("inf", "'inf': give 0 (never) or a positive number"),
        ("hourly", "'hourly' is not a number of seconds"),
    ],
)
def test_pda_serve_refuses_a_bad_full_scan_interval(
    capsys: pytest.CaptureFixture[str], value: str, why: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["pda", "serve", "d", "--full-scan-every", value])
    assert exc.value.code == 2
    assert f"argument --full-scan-every: {why}" in capsys.readouterr().err


@pytest.mark.parametrize(("given", "used"), [([], FULL_SCAN_EVERY), (["0"], 0.0), (["90"], 90.0)])
def test_pda_serve_hands_its_full_scan_interval_to_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: list[str], used: float
) -> None:
    got: dict[str, object] = {}

    async def serve(_d: object, _url: str, **kw: object) -> int:  # instead of serving forever
        got.update(kw)
        return 0

    monkeypatch.setattr(pda_cli, "_serve_async", serve)
    assert main(["pda", "init", str(tmp_path / "pda")]) == 0
    option = ["--full-scan-every", *given] if given else []
    assert main(["pda", "serve", str(tmp_path / "pda"), *option]) == 0
    assert got == {"watch": True, "full_scan_every": used}


async def test_the_pda_server_gives_its_store_the_full_scan_interval(tmp_path: Path) -> None:
    PdaDir.init(tmp_path / "pda")
    server = PdaServer(PdaDir.open(tmp_path / "pda"), full_scan_every=90)
    try:
        assert server.store.full_scan_every == 90
    finally:
        await server.close()


def test_pda_serve_help_states_the_full_scan_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["pda", "serve", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"(default: {FULL_SCAN_EVERY:.0f}, an hour;" in help_text
