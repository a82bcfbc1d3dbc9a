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
library's log — as itself where it stands as a token (so the PIN 0000 leaves the
PC/SC code 0x8010000C readable, and a masked digit run would tell the PIN anyway),
and in its encodings (hex, BCD, UTF-16, base64, MD5/SHA digests): anywhere when
they are 8 characters or more, as tokens when shorter.

``configure_logging`` may be called any number of times (each CLI invocation, every
test); :func:`reset_logging` undoes it. The output stream is looked up at each
write, so a replaced ``sys.stderr`` (pytest's capture) is always the one used.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import sys
from collections.abc import Mapping
from typing import Any, Literal, TextIO
from urllib.parse import quote

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

# An encoded form this long (hex of a 4-character secret, a digest, base64 of 6 bytes)
# is masked anywhere: a chance match is about one in 2**32 per place. A shorter one, and
# the secret's own text, only where it stands as a token (see _token).
_ANYWHERE = 8
# A letter or digit of any script: what continues a token.
_ALNUM = r"[^\W_]"
# ... unless it ends an escape of a printed bytes or str value: in b'\x081234' (a VERIFY
# APDU, an MQTT CONNECT packet: a length byte, then the secret) the 8 is not a token's.
_AFTER_ESCAPE = r"(?<=\\x[0-9A-Fa-f]{2})|(?<=\\u[0-9A-Fa-f]{4})|(?<=\\[abfnrtv0])"

_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None
_HANDLER_MARK = "_simsync_handler"


def register_secret(value: str | None) -> None:
    """Mask ``value`` in every log line from now on (PIN, PUK, password): as itself, and
    as the encodings a careless line would use (hex, BCD, UTF-16, base64, digests)."""
    global _pattern  # noqa: PLW0603 - one set of secrets per process, like the log config
    if value and len(value) >= _MIN_SECRET and value not in _secrets:
        _secrets.add(value)
        _pattern = _compile(_secrets)


def _base64_forms(raw: bytes) -> set[str]:
    """The whole encodings, and the part of each that does not depend on bytes before or
    after the secret (for a secret inside a longer encoded value), at each alignment."""
    forms: set[str] = set()
    for enc in (base64.b64encode, base64.urlsafe_b64encode):
        whole = enc(raw).decode()
        forms |= {whole, whole.rstrip("=")}
        for k in range(3):
            text = enc(b"\0" * k + raw).decode().rstrip("=")
            end = len(text) - (len(text) % 4 if (k + len(raw)) % 3 else 0)
            forms.add(text[4 if k else 0 : end])
    return forms


def _forms(secret: str) -> tuple[set[str], set[str]]:
    """(the secret's own text forms, its encoded forms)."""
    raw = secret.encode()
    text = {secret, quote(secret, safe="")}
    encoded = {raw.hex(), raw.hex().upper(), "\0".join(secret) + "\0"}  # UTF-16-LE as text
    for name in ("md5", "sha1", "sha256"):
        digest = hashlib.new(name, raw, usedforsecurity=False).hexdigest()
        encoded |= {digest, digest.upper()}
    if secret.isdigit():  # as a SIM stores digits: BCD, nibbles swapped, F-padded
        digits = secret + ("F" if len(secret) % 2 else "")
        encoded.add("".join(b + a for a, b in zip(digits[::2], digits[1::2], strict=True)))
    encoded |= _base64_forms(raw)
    return text, {f for f in encoded if f} - text


def _token(form: str) -> str:
    """``form`` where it stands as a token: not glued to a letter or digit on a side where
    it ends in one (the PIN 0000 in "0x8010000C" is part of another number, not the PIN),
    except the last character of a printed escape (``\\x08``) before it."""
    before = f"(?:(?<!{_ALNUM})|{_AFTER_ESCAPE})" if form[0].isalnum() else ""
    after = f"(?!{_ALNUM})" if form[-1].isalnum() else ""
    return before + re.escape(form) + after


def _compile(secrets: set[str]) -> re.Pattern[str]:
    parts: dict[str, str] = {}
    for secret in secrets:
        text, encoded = _forms(secret)
        for form in text:
            parts[form] = _token(form)
        for form in encoded:
            parts.setdefault(form, re.escape(form) if len(form) >= _ANYWHERE else _token(form))
    # Longest first: a digest is masked whole, not around a shorter form inside it.
    return re.compile("|".join(parts[f] for f in sorted(parts, key=len, reverse=True)))


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
    return text if _pattern is None else _pattern.sub(MASK, text)


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
    global _pattern  # noqa: PLW0603 - see register_secret
    _secrets.clear()
    _pattern = None
