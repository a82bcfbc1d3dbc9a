"""daemon.logs: formats, journald priorities, stdlib routing, no locals, no secrets."""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import pytest
import structlog

from daemon.logs import configure_logging, register_secret, resolve_format

PIN = "73519468"
PASSWORD = "correct-horse-battery"


class Err:
    """What reached stderr so far (pytest's capture: not a terminal, no descriptor)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.text = ""

    def getvalue(self) -> str:
        self.text += self.capsys.readouterr().err
        return self.text


@pytest.fixture
def err(capsys: pytest.CaptureFixture[str]) -> Err:
    """stderr as pytest captures it (it swaps sys.stderr between phases: set up per test)."""
    return Err(capsys)


def lines(buf: Err | io.StringIO) -> list[str]:
    return buf.getvalue().splitlines()


def records(buf: Err | io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines(buf)]


def test_json_lines_when_stderr_is_not_a_terminal(err: Err) -> None:
    configure_logging("info")
    structlog.get_logger("t").info("card_inserted", reader="Virtual PCD 00 00", atr_len=9)
    (rec,) = records(err)
    assert rec["event"] == "card_inserted"
    assert rec["level"] == "info"
    assert rec["reader"] == "Virtual PCD 00 00"
    assert rec["timestamp"].endswith("Z")


@contextmanager
def stderr_on_tty() -> Iterator[int]:
    """sys.stderr on a real pseudo-terminal; yields the master side to read it.

    Swapped inside the test body: pytest re-installs its own capture between phases.
    """
    master, slave = os.openpty()
    saved = sys.stderr
    with open(slave, "w", encoding="utf-8") as stream:
        sys.stderr = stream
        try:
            yield master
        finally:
            sys.stderr = saved
            os.close(master)


@contextmanager
def stderr_to(path: Path) -> Iterator[TextIO]:
    """sys.stderr on a real file (it has a device and an inode, like journald's socket)."""
    saved = sys.stderr
    with path.open("w", encoding="utf-8") as stream:
        sys.stderr = stream
        try:
            yield stream
        finally:
            sys.stderr = saved


def read_tty(master: int) -> str:
    return os.read(master, 65536).decode().replace("\r\n", "\n")


def test_console_lines_on_a_terminal() -> None:
    with stderr_on_tty() as tty:
        assert resolve_format("auto") == "console"
        configure_logging("info")
        structlog.get_logger().info("card_inserted", reader="pcd")
        out = read_tty(tty)
    assert "card_inserted" in out
    assert "reader=pcd" in out
    assert not out.lstrip().startswith("{")


def test_explicit_format_wins(err_file: Path) -> None:
    with stderr_on_tty() as tty:
        configure_logging("info", "json")
        structlog.get_logger().info("on_tty")
        assert json.loads(read_tty(tty))["event"] == "on_tty"

    with stderr_to(err_file):
        configure_logging("info", "console")
        structlog.get_logger().info("in_file", n=1)
    text = err_file.read_text()
    assert "in_file" in text
    assert "n=1" in text
    assert not text.startswith("{")


@pytest.fixture
def err_file(tmp_path: Path) -> Path:
    return tmp_path / "stderr.log"


def test_journald_priority_prefix_when_journal_stream_is_stderr(
    err_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with stderr_to(err_file) as stream:
        st = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        configure_logging("debug")
        log = structlog.get_logger()
        log.debug("d")
        log.info("i")
        log.warning("w")
        log.error("e")
        log.critical("c")
        logging.getLogger("aiomqtt").warning("from a library")
    got = err_file.read_text().splitlines()
    assert [line[:3] for line in got] == ["<7>", "<6>", "<4>", "<3>", "<2>", "<4>"]
    # After the prefix each line is still one JSON object.
    assert [json.loads(line[3:])["event"] for line in got] == [
        "d", "i", "w", "e", "c", "from a library",
    ]  # fmt: skip


def test_no_prefix_when_journal_stream_is_another_file(
    err_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = os.stat(tmp_path)
    monkeypatch.setenv("JOURNAL_STREAM", f"{other.st_dev}:{other.st_ino}")
    with stderr_to(err_file):
        configure_logging("info")
        structlog.get_logger().info("x")
    assert err_file.read_text().startswith("{")


def test_stdlib_loggers_share_the_pipeline_and_the_context(err: Err) -> None:
    configure_logging("info")
    with structlog.contextvars.bound_contextvars(sync_id="s-1", request_id="r-9"):
        logging.getLogger("aiomqtt").info("connected to %s", "broker")
        logging.getLogger("smartcard").debug("below the level")
        structlog.get_logger().info("ours")
    lib, ours = records(err)
    assert lib["event"] == "connected to broker"
    assert lib["logger"] == "aiomqtt"
    assert lib["level"] == "info"
    assert (lib["sync_id"], lib["request_id"]) == ("s-1", "r-9")
    assert (ours["sync_id"], ours["request_id"]) == ("s-1", "r-9")


def test_level_filters_both_kinds(err: Err) -> None:
    configure_logging("warning")
    structlog.get_logger().info("quiet")
    logging.getLogger("asyncio").info("quiet too")
    structlog.get_logger().warning("loud")
    assert [r["event"] for r in records(err)] == ["loud"]


def test_python_warnings_become_log_lines(err: Err) -> None:
    configure_logging("warning")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("old api", DeprecationWarning, stacklevel=1)
    (rec,) = records(err)
    assert rec["logger"] == "py.warnings"
    assert "old api" in rec["event"]


def _fail_with_a_secret_local() -> None:
    pin = PIN  # a local variable a traceback with locals would print
    raise RuntimeError(f"card refused {len(pin)} digits")


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_tracebacks_never_show_locals(err: Err, fmt: Any) -> None:
    configure_logging("info", fmt)
    try:
        _fail_with_a_secret_local()
    except RuntimeError:
        structlog.get_logger().exception("sync_crashed")
        logging.getLogger("aiomqtt").exception("library_crashed")
    out = err.getvalue()
    assert "card refused 8 digits" in out
    assert "_fail_with_a_secret_local" in out  # the traceback is there ...
    assert PIN not in out  # ... without the frame's variables


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_secret_keys_are_redacted_and_harmless_keys_kept(err: Err, fmt: Any) -> None:
    configure_logging("info", fmt)
    structlog.get_logger().info(
        "verify",
        pin=PIN,
        new_pin=PIN,
        puk="12345678",
        password=PASSWORD,
        mqtt_password=PASSWORD,
        broker={"url": "mqtt://h", "password": PASSWORD},
        pin_file="/etc/simsync/pin",
        pin_tries=3,
    )
    out = err.getvalue()
    for secret in (PIN, "12345678", PASSWORD):
        assert secret not in out
    assert "/etc/simsync/pin" in out
    assert "mqtt://h" in out
    if fmt == "json":
        (rec,) = records(err)
        assert rec["pin"] == rec["new_pin"] == rec["puk"] == "[redacted]"
        assert rec["password"] == rec["mqtt_password"] == "[redacted]"
        assert rec["broker"]["password"] == "[redacted]"
        assert rec["pin_tries"] == 3


def test_registered_secrets_are_masked_in_messages_errors_and_library_logs(err: Err) -> None:
    configure_logging("info")
    register_secret(PIN)
    register_secret(PASSWORD)
    register_secret("12")  # too short to mask safely: numbers must stay readable
    log = structlog.get_logger()
    log.warning(f"the pin {PIN} was refused", detail=f"pw={PASSWORD}", apdus=12)
    logging.getLogger("paho").warning("CONNECT user=u password=%s", PASSWORD)
    try:
        raise ValueError(f"bad PIN {PIN}")
    except ValueError:
        log.exception("boom")
    out = err.getvalue()
    assert PIN not in out
    assert PASSWORD not in out
    a, b, c = records(err)
    assert a["event"] == "the pin *** was refused"
    assert a["detail"] == "pw=***"
    assert a["apdus"] == 12
    assert b["event"] == "CONNECT user=u password=***"
    assert "bad PIN ***" in json.dumps(c)


def test_configure_twice_keeps_one_handler(err: Err) -> None:
    configure_logging("info")
    configure_logging("info")
    logging.getLogger("x").warning("once")
    assert len(lines(err)) == 1


def test_stream_is_looked_up_at_each_write(monkeypatch: pytest.MonkeyPatch) -> None:
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging("info", "json")
    log = structlog.get_logger()
    first.close()  # what pytest's capture does to the stream of an earlier test
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    try:
        log.info("after_swap")
        logging.getLogger("lib").info("lib_after_swap")
    finally:
        monkeypatch.undo()
    assert [r["event"] for r in records(second)] == ["after_swap", "lib_after_swap"]


def test_a_closed_stderr_does_not_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    gone = io.StringIO()
    monkeypatch.setattr(sys, "stderr", gone)
    configure_logging("info", "json")
    gone.close()
    try:
        structlog.get_logger().error("nowhere to go")  # must not raise into the caller
        logging.getLogger("lib").error("nor this")
    finally:
        monkeypatch.undo()
