"""The names of the log formats, apart from ``daemon.logs`` so the parser needs no structlog."""

from __future__ import annotations

__all__ = ["LOG_FORMATS", "LogFormat"]

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (start-up)

if TYPE_CHECKING:
    from typing import Literal

    LogFormat = Literal["auto", "console", "json"]
else:
    LogFormat = str
LOG_FORMATS: tuple[LogFormat, ...] = ("auto", "console", "json")
