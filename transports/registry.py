"""Transports chosen by URL scheme, each driver module imported only when first used.

``TRANSPORTS`` maps a scheme to ``"module:attr"``, the attr being a
:class:`~transports.base.TransportDriver`; :func:`register_transport` adds schemes
(``serial``, ``ble``) later without an if-chain anywhere.
"""

from __future__ import annotations

import asyncio
import importlib
import re

from .base import DEFAULT_MAX_FRAME, FrameLink, Listener, TransportDriver, check_max_frame
from .errors import TransportSpecError, TransportTimeout

__all__ = [
    "TRANSPORTS",
    "check_address",
    "listen",
    "open_transport",
    "register_transport",
    "scheme_of",
]

#: scheme -> "package.module:ATTR" of its driver (imported lazily).
TRANSPORTS: dict[str, str] = {
    "memory": "transports.memory:DRIVER",
    "serial": "transports.serial:DRIVER",
    "tcp": "transports.tcp:DRIVER",
    "ble": "transports.ble:DRIVER",
}

_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")
_TARGET = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


def register_transport(scheme: str, target: str) -> None:
    """Make *scheme* resolve to the driver named by *target* (``"module:attr"``)."""
    if not _SCHEME.fullmatch(scheme):
        raise TransportSpecError(f"bad scheme name {scheme!r}: use lowercase letters first")
    if not _TARGET.fullmatch(target):
        raise TransportSpecError(f"bad driver target {target!r}: expected 'module:attr'")
    TRANSPORTS[scheme] = target


def scheme_of(url: str) -> str:
    """Return the URL's scheme if it is registered; else ``TransportSpecError``."""
    if not isinstance(url, str):
        raise TransportSpecError(f"transport URL must be a string, not {type(url).__name__}")
    scheme, sep, _ = url.partition(":")
    if not sep or not scheme:
        raise TransportSpecError(
            f"bad transport URL {url!r}: expected SCHEME:... "
            f"(one of {', '.join(sorted(TRANSPORTS))})"
        )
    if scheme not in TRANSPORTS:
        raise TransportSpecError(
            f"unknown transport scheme {scheme!r} in {url!r}; "
            f"known: {', '.join(sorted(TRANSPORTS))}"
        )
    return scheme


def check_address(url: str) -> None:
    """Raise ``TransportSpecError`` unless *url* is one this program could connect to.

    Checks the scheme and, where the driver can tell, the rest of the URL; connects
    to nothing. Config loaders call it so a bad address is a config error up front.
    """
    driver = driver_for(url)
    if driver.check is not None:
        driver.check(url)


def driver_for(url: str) -> TransportDriver:
    """Import (once) and return the driver for *url*'s scheme."""
    module_name, _, attr = TRANSPORTS[scheme_of(url)].partition(":")
    driver = getattr(importlib.import_module(module_name), attr)
    if not isinstance(driver, TransportDriver):
        raise TransportSpecError(f"{TRANSPORTS[scheme_of(url)]} is not a TransportDriver")
    return driver


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0
    ):
        raise TransportSpecError(f"timeout must be a positive number of seconds, got {timeout!r}")


async def open_transport(
    url: str,
    *,
    timeout: float | None = None,  # noqa: ASYNC109 - a connect deadline is the API asked for
    max_frame: int = DEFAULT_MAX_FRAME,
    **options: object,
) -> FrameLink:
    """Connect to the peer at *url* and return the link.

    Raises ``TransportSpecError`` (bad URL or option), ``ConnectFailed`` (unreachable)
    or ``TransportTimeout`` (not connected within *timeout* seconds).
    """
    _check_timeout(timeout)
    check_max_frame(max_frame)
    driver = driver_for(url)
    try:
        async with asyncio.timeout(timeout):
            return await driver.open(url, max_frame, options)
    except TimeoutError as exc:
        raise TransportTimeout(f"connecting to {url} timed out after {timeout} s") from exc


async def listen(url: str, *, max_frame: int = DEFAULT_MAX_FRAME, **options: object) -> Listener:
    """Start listening at *url*; ``listener.url`` is where peers connect."""
    check_max_frame(max_frame)
    return await driver_for(url).serve(url, max_frame, options)
