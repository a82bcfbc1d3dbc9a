"""The simsync GATT service's UUIDs: one home for the BLE link, the PDA's advertisement
and the phone's presence watcher (which looks for :data:`SERVICE_UUID` in adverts).

Plain constants, no bleak: importing this module costs nothing.
"""

from __future__ import annotations

import uuid

__all__ = ["NOTIFY_CHAR_UUID", "SERVICE_UUID", "WRITE_CHAR_UUID", "uuid128_ad_bytes"]

#: The simsync GATT service (random 128-bit UUID, fixed for ever). The PDA advertises it.
SERVICE_UUID = "5e3d0001-6c1b-4f5e-9a8d-51c0a5f0b1e7"
#: Phone -> PDA: chunks written with ATT Write Command (no response).
WRITE_CHAR_UUID = "5e3d0002-6c1b-4f5e-9a8d-51c0a5f0b1e7"
#: PDA -> phone: chunks sent as notifications.
NOTIFY_CHAR_UUID = "5e3d0003-6c1b-4f5e-9a8d-51c0a5f0b1e7"


def uuid128_ad_bytes(value: str) -> bytes:
    """A 128-bit UUID as it sits in advertising data (Core spec Supp. A 1.1: little-endian)."""
    return uuid.UUID(value).bytes[::-1]
