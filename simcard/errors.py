"""The error tree of the card room.

The card core itself never raises for APDU input (it answers status words); these
errors are for the Python-side edges: building a card, and its image file.
"""

from __future__ import annotations

__all__ = [
    "CardParamError",
    "ImageCorrupt",
    "ImageError",
    "ImageExists",
    "ImageLocked",
    "ImageMissing",
    "ImageWriteError",
    "SimCardError",
]


class SimCardError(Exception):
    """Root of every error the simcard room raises."""


class CardParamError(SimCardError, ValueError):
    """A card creation parameter is out of range (records, PIN, ICCID...)."""


class ImageError(SimCardError):
    """Something is wrong with a card image file."""


class ImageMissing(ImageError):  # noqa: N818 - names fixed by the team API
    """The image file does not exist."""


class ImageExists(ImageError):  # noqa: N818 - names fixed by the team API
    """Refused to create an image over an existing file."""


class ImageCorrupt(ImageError):  # noqa: N818 - names fixed by the team API
    """The file is not a simsync card image, or it is damaged; it was left untouched."""


class ImageLocked(ImageError):  # noqa: N818 - names fixed by the team API
    """Another process (or another open in this one) holds the image."""


class ImageWriteError(ImageError):
    """A state change could not be made durable; the card answered a technical error."""
