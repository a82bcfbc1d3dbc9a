"""The daemon room's commands as a user runs them: demo, sync's exit codes and messages."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from simcard import create_image


def simsync(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_demo_runs_slow_then_fast_and_reruns_fast(tmp_path: Path) -> None:
    first = simsync("demo", "--dir", str(tmp_path / "demo"))
    assert first.returncode == 0, first.stderr
    assert "(new)" in first.stdout
    assert "slow sync with demo-pda" in first.stdout
    assert "fast sync with demo-pda" in first.stdout
    assert f"simsync demo --dir {tmp_path / 'demo'}" in first.stdout  # how to rerun this one
    vcf = tmp_path / "demo" / "pda" / "contacts" / "demo-bob.vcf"
    vcf.write_text(vcf.read_text().replace("TEL;TYPE=CELL:0612345679", "TEL;TYPE=CELL:0699999999"))
    again = simsync("demo", "--dir", str(tmp_path / "demo"))
    assert again.returncode == 0, again.stderr
    assert "(reused)" in again.stdout
    first_block = again.stdout.split("== second sync")[0]
    assert "fast sync" in first_block
    assert "to card: 0 added, 1 modified, 0 deleted" in first_block


def config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "phone.toml"
    path.write_text(f'[node]\nid = "p"\nstate_dir = "{tmp_path / "state"}"\n' + body)
    return path


def test_no_pda_configured_says_so_on_stderr_with_exit_78(tmp_path: Path) -> None:
    res = simsync("sync", "--config", str(config(tmp_path, "")))
    assert res.returncode == 78
    assert res.stdout == ""
    assert "no [[pda]] table configured" in res.stderr
    assert "None" not in res.stderr


def test_a_bad_config_under_journald_is_an_error_entry(tmp_path: Path) -> None:
    """Under systemd the reason for exit 78 is a JSON line at priority 3 (err).

    A plain line would be filed at priority info: `journalctl -p warning` would hide
    why the service did not start. Elsewhere it stays the one plain line.
    """
    bad = config(tmp_path, "[mqtt\n")
    argv = [sys.executable, "-m", "daemon.cli", "daemon", "--config", str(bad)]
    err = tmp_path / "stderr"
    with err.open("w") as stream:
        st = os.fstat(stream.fileno())
        env = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        res = subprocess.run(argv, stderr=stream, env=env, timeout=60, check=False)
    assert res.returncode == 78
    prefix, _, text = err.read_text().partition("{")
    assert prefix == "<3>"
    line = json.loads("{" + text)
    assert (line["level"], line["event"]) == ("error", "config unusable")
    assert str(bad) in line["error"]
    plain = simsync("daemon", "--config", str(bad))
    assert (plain.returncode, plain.stderr.startswith(f"simsync: {bad}")) == (78, True)


def test_a_card_that_needs_a_pin_without_a_pin_file(tmp_path: Path) -> None:
    image = tmp_path / "card.sqlite"
    create_image(image, records=5)
    dev = "ab" * 32
    body = (
        f'[card]\nimage = "{image}"\n'
        f'[[pda]]\nname = "p"\naddress = "tcp://127.0.0.1:9"\ndevice_id = "{dev}"\n'
    )
    res = simsync("sync", "--config", str(config(tmp_path, body)), "--json")
    assert res.returncode == 1
    result = json.loads(res.stdout)
    assert result["error"]["code"] == "pin_rejected"
    assert "pin_file" in result["error"]["message"]


def test_pda_serve_refuses_an_unreachable_listen_url(tmp_path: Path) -> None:
    assert simsync("pda", "init", str(tmp_path / "pda")).returncode == 0
    res = simsync("pda", "serve", str(tmp_path / "pda"), "--listen", "memory:x")
    assert res.returncode == 1
    assert "tcp://HOST:PORT or serial:///dev/TTY" in res.stderr


def pin_rejected_config(tmp_path: Path) -> Path:
    """A config whose sync fails at once (`pin_rejected`, exit status 1): no PDA needed."""
    image = tmp_path / "card.sqlite"
    create_image(image, records=5)
    body = (
        f'[card]\nimage = "{image}"\n'
        f'[[pda]]\nname = "p"\naddress = "tcp://127.0.0.1:9"\ndevice_id = "{"ab" * 32}"\n'
    )
    return config(tmp_path, body)


def start(stdout: int, *args: str, unbuffered: bool) -> subprocess.Popen[str]:
    """``simsync ARGS`` writing on descriptor `stdout`, with or without PYTHONUNBUFFERED."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    return subprocess.Popen(
        [sys.executable, "-m", "daemon.cli", *args],
        stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def start_unread(*args: str, unbuffered: bool) -> subprocess.Popen[str]:
    """``simsync ARGS`` writing into a pipe whose read end was closed before it started:
    its first write to stdout fails."""
    r, w = os.pipe()
    os.close(r)
    try:
        return start(w, *args, unbuffered=unbuffered)
    finally:
        os.close(w)


def assert_quiet(stderr: str) -> None:
    """No traceback, nor Python's "Exception ignored" at exit, for a reader that went away."""
    for noise in ("Traceback", "BrokenPipe", "Exception ignored", "Errno 32"):
        assert noise not in stderr


@pytest.mark.parametrize("unbuffered", [True, False])
def test_sync_json_is_one_write_so_a_reader_of_one_message_gets_it_whole(
    tmp_path: Path, unbuffered: bool
) -> None:
    # A SOCK_SEQPACKET socket keeps each write(2) apart: the first message the reader
    # takes is the first write. `print` made two (text, then newline) when unbuffered.
    reader, writer = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with reader:
        with writer:
            proc = start(writer.fileno(), "sync", "--config", str(pin_rejected_config(tmp_path)),
                         "--json", unbuffered=unbuffered)  # fmt: skip
        first = reader.recv(1 << 16).decode()
    _, err = proc.communicate(timeout=120)
    assert first.endswith("}\n")
    assert json.loads(first)["error"]["code"] == "pin_rejected"
    assert proc.returncode == 1, err
    assert_quiet(err)


def test_sync_json_into_head_c_20_ends_with_the_syncs_status(tmp_path: Path) -> None:
    # `simsync sync --json | head -c 20`: the reader takes 20 bytes and closes the pipe.
    r, w = os.pipe()
    proc = start(w, "sync", "--config", str(pin_rejected_config(tmp_path)), "--json",
                 unbuffered=True)  # fmt: skip
    os.close(w)
    try:
        head = os.read(r, 20)
    finally:
        os.close(r)
    _, err = proc.communicate(timeout=120)
    assert head.startswith(b'{"id": ')
    assert (proc.returncode, "pin_rejected" in err) == (1, True)
    assert_quiet(err)


@pytest.mark.parametrize("unbuffered", [True, False])
def test_sync_whose_stdout_reader_has_gone_ends_quietly_with_the_syncs_status(
    tmp_path: Path, unbuffered: bool
) -> None:
    proc = start_unread("sync", "--config", str(pin_rejected_config(tmp_path)), "--json",
                        unbuffered=unbuffered)  # fmt: skip
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err  # the sync's (pin_rejected), not 141 or 120
    assert "pin_rejected" in err  # the warning log line still says why
    assert_quiet(err)


@pytest.mark.parametrize("unbuffered", [True, False])
def test_another_command_whose_stdout_reader_has_gone_ends_quietly_with_141(
    tmp_path: Path, unbuffered: bool
) -> None:
    # check-config's output is its whole work: lost, it ends 141 as after a SIGPIPE,
    # whether the write failed midway (unbuffered) or at the exit's flush (buffered).
    proc = start_unread("check-config", str(pin_rejected_config(tmp_path)), unbuffered=unbuffered)
    _, err = proc.communicate(timeout=60)
    assert (proc.returncode, err) == (141, "")


@pytest.mark.parametrize("unbuffered", [True, False])
@pytest.mark.parametrize(
    ("args", "status"),
    [(["--json"], 1), ([], 1), (["--no-pda"], 78)],
    ids=["json", "summary-on-stderr", "bad-config"],
)
def test_sync_whose_stdout_and_stderr_reader_has_gone_ends_with_the_syncs_status(
    tmp_path: Path, unbuffered: bool, args: list[str], status: int
) -> None:
    # `simsync sync 2>&1 | head -c 0`: the summary or error on stderr and the log lines
    # find no reader; the status is still the sync's (1: pin_rejected; 78: bad config),
    # not 141 (a failed print) or 120 (the interpreter's last flush).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    if args == ["--no-pda"]:
        path, args = config(tmp_path, ""), []
    else:
        path = pin_rejected_config(tmp_path)
    r, w = os.pipe()
    os.close(r)
    try:
        argv = [sys.executable, "-m", "daemon.cli", "sync", *args, "--config", str(path)]
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=w, stderr=w, env=env,
                              timeout=120, check=False)  # fmt: skip
    finally:
        os.close(w)
    assert proc.returncode == status


@pytest.mark.parametrize("unbuffered", [True, False])
def test_version_whose_stdout_reader_has_gone_ends_quietly_with_141(unbuffered: bool) -> None:
    # argparse prints --version while parsing: that print failed outside the command's
    # broken-pipe rule, with a traceback.
    proc = start_unread("--version", unbuffered=unbuffered)
    _, err = proc.communicate(timeout=60)
    assert (proc.returncode, err) == (141, "")
