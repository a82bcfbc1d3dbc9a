"""Logging for every `simsync` command: structlog to stderr, never stdout.

stdout belongs to a command's result (JSON for scripts); logs go to stderr:

- ``console``: readable ``key=value`` lines, the default on a terminal;
- ``json``: one JSON object per line, the default when stderr is not a terminal
  (a pipe, a file, journald). ``--log-format`` chooses explicitly.
- Under journald (``$JOURNAL_STREAM`` names stderr's device:inode) every line starts
  with the syslog priority ``<N>``, so ``journalctl -p warning`` filters.

Standard-library loggers (aiomqtt, paho, asyncio, pyscard) go through the same
pipeline, with the same context variables (``sync_id``, ``request_id``) bound.
Tracebacks never include local variables. Values under secret keys (``pin``,
``puk``, ``password``, ``new_pin`` ...) print as ``[redacted]``, and every string
given to :func:`register_secret` (the PIN read from its file, the MQTT password) is
masked in the finished line, wherever it turns up: a message, an exception text, a
library's log.

``configure_logging`` may be called any number of times (each CLI invocation, every
test); :func:`reset_logging` undoes it. The output stream is looked up at each
write, so a replaced ``sys.stderr`` (pytest's capture) is always the one used.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Mapping
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from daemon.logformats import LOG_FORMATS, LogFormat

__all__ = [
    "LOG_FORMATS",
    "LogFormat",
    "configure_logging",
    "journal_priority",
    "redact_secrets",
    "register_secret",
    "reset_logging",
    "resolve_format",
]

REDACTED = "[redacted]"
MASK = "***"

# syslog priorities (sd-daemon.h SD_*): what journald reads from a "<N>" prefix.
_PRIORITY = {"debug": 7, "info": 6, "warning": 4, "warn": 4, "error": 3, "exception": 3}
_PRIORITY.update(critical=2, fatal=2)
# A key whose last word is one of these holds a secret ("pin", "new_pin",
# "mqtt_password"); "pin_file" or "pin_tries" do not and stay readable.
_SECRET_WORDS = frozenset({"pin", "puk", "password", "passwd", "passphrase", "secret", "token"})
_WORD_SPLIT = re.compile(r"[_\-.\s]+")
# Secrets shorter than this are not masked in text: "12" would mangle every number.
_MIN_SECRET = 4

_secrets: set[str] = set()
_HANDLER_MARK = "_simsync_handler"


def register_secret(value: str | None) -> None:
    """Mask ``value`` wherever it appears in a log line from now on (PIN, PUK, password)."""
    if value and len(value) >= _MIN_SECRET:
        _secrets.add(value)


def journal_priority(level: str) -> int:
    """The syslog priority journald reads from ``<N>`` for a structlog level name."""
    return _PRIORITY.get(level.lower(), 6)


def _secret_key(key: str) -> bool:
    words = _WORD_SPLIT.split(key.lower())
    return bool(words) and words[-1] in _SECRET_WORDS


def _redact(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: REDACTED if _secret_key(str(k)) else _redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    return value


def redact_secrets(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: values under secret keys become ``[redacted]`` (nested too)."""
    for key, value in list(event_dict.items()):
        if key.startswith("_"):
            continue  # structlog's own bookkeeping (_record, _from_structlog)
        event_dict[key] = REDACTED if _secret_key(key) else _redact(value)
    return event_dict


def _mask(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class _Finish:
    """The last step: render, mask registered secrets, add journald's ``<N>`` prefix."""

    def __init__(self, renderer: Processor, journal: bool) -> None:
        self.renderer = renderer
        self.journal = journal

    def __call__(self, logger: WrappedLogger, name: str, event_dict: EventDict) -> str:
        level = str(event_dict.get("level", name))
        rendered = self.renderer(logger, name, event_dict)
        text = _mask(rendered if isinstance(rendered, str) else str(rendered))
        if self.journal:
            prefix = f"<{journal_priority(level)}>"
            # journald reads the prefix per line: a multi-line traceback keeps its level.
            text = "\n".join(prefix + line for line in text.split("\n"))
        return text


def _stream() -> TextIO:
    return sys.stderr


def _write(text: str) -> None:
    try:
        stream = _stream()
        stream.write(text + "\n")
        stream.flush()
    except (OSError, ValueError):
        # stderr closed or its reader gone (`| head`, journald restarting): a log line
        # has nowhere to go, and losing it must not take the daemon down with it.
        pass


class _LazyStderrLogger:
    """structlog's final logger: writes each line to whatever ``sys.stderr`` is *now*."""

    def msg(self, message: str) -> None:
        """Write one finished line."""
        _write(message)

    log = debug = info = warn = warning = msg
    err = error = critical = fatal = exception = failure = msg


def _logger_factory(*_args: Any) -> _LazyStderrLogger:
    return _LazyStderrLogger()


class _StdlibHandler(logging.Handler):
    """Sends stdlib records through the structlog formatter to the current stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # a library's bad format string must not kill the caller
            self.handleError(record)
            return
        _write(text)


def _journal_matches(stream: TextIO) -> bool:
    """True when ``$JOURNAL_STREAM`` (``DEV:INODE``) is this stream's file descriptor."""
    raw = os.environ.get("JOURNAL_STREAM", "")
    dev, _, ino = raw.partition(":")
    if not dev or not ino:
        return False
    try:
        st = os.fstat(stream.fileno())
        return (st.st_dev, st.st_ino) == (int(dev), int(ino))
    except (OSError, ValueError, AttributeError):
        return False  # no real descriptor (pytest capture, StringIO)


def stderr_is_journal() -> bool:
    """True when stderr is journald's stream for this process (``$JOURNAL_STREAM``)."""
    return _journal_matches(_stream())


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (OSError, ValueError, AttributeError):
        return False


def resolve_format(fmt: LogFormat, stream: TextIO | None = None) -> Literal["console", "json"]:
    """``auto`` is ``console`` on a terminal and ``json`` anywhere else."""
    if fmt != "auto":
        return fmt
    return "console" if _isatty(stream or _stream()) else "json"


def _add_logger_name(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    record = event_dict.get("_record")
    if isinstance(record, logging.LogRecord):
        event_dict.setdefault("logger", record.name)
    return event_dict


def configure_logging(
    level: str = "warning", fmt: LogFormat = "auto", *, journal: bool | None = None
) -> None:
    """Route structlog and stdlib logging to stderr at ``level`` (debug, info, warning, error).

    ``fmt`` ``auto`` picks ``console`` on a terminal and ``json`` otherwise. ``journal``
    forces the ``<N>`` prefix on or off; None detects journald from ``$JOURNAL_STREAM``.
    """
    numeric = logging.getLevelNamesMapping()[level.upper()]
    stream = _stream()
    chosen = resolve_format(fmt, stream)
    if journal is None:
        journal = _journal_matches(stream)
    renderer: Processor
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    if chosen == "json":
        shared.append(
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            )
        )
        renderer = structlog.processors.JSONRenderer(ensure_ascii=False)
    else:
        # Explicit: the default formatter would pick rich/better_exceptions, which
        # print local variables (a PIN) when installed.
        renderer = structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    finish = _Finish(renderer, journal)
    structlog.configure(
        processors=[*shared, finish],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_logger_factory,
        cache_logger_on_first_use=False,
    )
    _route_stdlib(numeric, shared, finish)


def _route_stdlib(numeric: int, shared: list[Processor], finish: _Finish) -> None:
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[_add_logger_name, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, finish],
    )
    handler = _StdlibHandler()
    setattr(handler, _HANDLER_MARK, True)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    _drop_handlers(root)
    root.addHandler(handler)
    root.setLevel(numeric)
    # Python warnings (DeprecationWarning from a library) as log lines, not raw stderr.
    logging.captureWarnings(True)


def _drop_handlers(root: logging.Logger) -> None:
    for h in list(root.handlers):
        if getattr(h, _HANDLER_MARK, False):
            root.removeHandler(h)
            h.close()


def reset_logging() -> None:
    """Undo :func:`configure_logging` (tests): structlog defaults, our stdlib handler gone."""
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    root = logging.getLogger()
    _drop_handlers(root)
    root.setLevel(logging.WARNING)
    logging.captureWarnings(False)
    _secrets.clear()
