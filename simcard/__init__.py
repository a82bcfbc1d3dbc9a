"""The emulated SIM card: file system, CHV, the sync-object applet, the card image, vpcd."""

from simcard.card import ATR, STATUS_WORDS, SimCard, new_memory_card
from simcard.errors import (
    CardParamError,
    ImageCorrupt,
    ImageError,
    ImageExists,
    ImageLocked,
    ImageMissing,
    ImageWriteError,
    SimCardError,
)
from simcard.image import SCHEMA_VERSION, create_image, open_image
from simcard.state import DEFAULT_ICCID, CardParams, MemoryStore, Store

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
