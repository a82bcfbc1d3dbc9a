"""The names of the log formats, apart from ``daemon.logs`` so the parser needs no structlog."""

from __future__ import annotations

from typing import Literal

__all__ = ["LOG_FORMATS", "LogFormat"]

LogFormat = Literal["auto", "console", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("auto", "console", "json")
