"""The emulated SIM card: file system, CHV, the sync-object applet, the card image, vpcd.

Every name comes from its module on first use (PEP 562): `simsync card --help` and
the other rooms' parsers load no card.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .card import ATR, STATUS_WORDS, SimCard, new_memory_card
    from .errors import (
        CardParamError,
        ImageCorrupt,
        ImageError,
        ImageExists,
        ImageLocked,
        ImageMissing,
        ImageWriteError,
        SimCardError,
    )
    from .image import SCHEMA_VERSION, create_image, open_image
    from .state import DEFAULT_ICCID, CardParams, MemoryStore, Store

#: name -> the module that defines it, imported when the name is first asked for.
_LAZY = {
    "ATR": "simcard.card",
    "STATUS_WORDS": "simcard.card",
    "SimCard": "simcard.card",
    "new_memory_card": "simcard.card",
    "CardParamError": "simcard.errors",
    "ImageCorrupt": "simcard.errors",
    "ImageError": "simcard.errors",
    "ImageExists": "simcard.errors",
    "ImageLocked": "simcard.errors",
    "ImageMissing": "simcard.errors",
    "ImageWriteError": "simcard.errors",
    "SimCardError": "simcard.errors",
    "SCHEMA_VERSION": "simcard.image",
    "create_image": "simcard.image",
    "open_image": "simcard.image",
    "DEFAULT_ICCID": "simcard.state",
    "CardParams": "simcard.state",
    "MemoryStore": "simcard.state",
    "Store": "simcard.state",
}


def __getattr__(name: str) -> Any:
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'simcard' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once: later lookups never come back here
    return value


__all__ = [
    "ATR",
    "DEFAULT_ICCID",
    "SCHEMA_VERSION",
    "STATUS_WORDS",
    "CardParamError",
    "CardParams",
    "ImageCorrupt",
    "ImageError",
    "ImageExists",
    "ImageLocked",
    "ImageMissing",
    "ImageWriteError",
    "MemoryStore",
    "SimCard",
    "SimCardError",
    "Store",
    "create_image",
    "new_memory_card",
    "open_image",
]
