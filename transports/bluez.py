"""What BlueZ's watchers ask of the D-Bus daemon: shared by the BLE peripheral (the PDA's
server) and the phone's presence watcher (daemon/presence.py). Imports dbus-fast, as
both of them do already."""

from __future__ import annotations

from dbus_fast import Message

__all__ = ["BLUEZ", "BLUEZ_OWNER_RULE", "add_match"]

BLUEZ = "org.bluez"
#: bluetoothd starting or going away (the bus name org.bluez changes owner).
BLUEZ_OWNER_RULE = (
    "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',"
    f"member='NameOwnerChanged',arg0='{BLUEZ}'"
)


def add_match(rule: str) -> Message:
    """The bus daemon's AddMatch call: deliver to this connection the signals `rule` matches."""
    return Message(
        destination="org.freedesktop.DBus",
        path="/org/freedesktop/DBus",
        interface="org.freedesktop.DBus",
        member="AddMatch",
        signature="s",
        body=[rule],
    )
