"""Home Assistant MQTT discovery (spec/mqtt.md's section): the retained configs, pure.

``discovery_configs`` gives every ``(topic, payload)`` the daemon publishes
retained when ``[mqtt] ha_discovery = true``: one device, a "Sync now" button and
a last-result sensor per PDA, a card-state sensor, and a presence binary_sensor
per PDA whose presence is watched (its state is the retained
``ROOT/pda/<name>/presence``, ``near``/``away``). ``stale_config`` tells which retained
config on the broker belongs to this node but no longer to the config (a PDA
that left it): the daemon clears those with an empty retained payload.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from daemon.wire import Topics

__all__ = [
    "DiscoveryContext",
    "config_topic",
    "discovery_configs",
    "object_ids",
    "stale_config",
    "subscriptions",
]

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def _safe(name: str) -> str:
    """Discovery topic levels take [A-Za-z0-9_-]; names may also hold '.'."""
    return _UNSAFE.sub(lambda m: f"_{ord(m.group()):02x}_", name)


@dataclass(frozen=True)
class DiscoveryContext:
    """What the configs are made from."""

    node_id: str
    root: str  # the MQTT topic root, ROOT in the spec
    prefix: str  # discovery prefix, "homeassistant" unless configured
    version: str
    pdas: tuple[str, ...]
    presence: frozenset[str] = frozenset()  # PDAs whose presence is watched


def config_topic(ctx: DiscoveryContext, component: str, object_id: str) -> str:
    """``<prefix>/<component>/<node id>/<object>/config``."""
    return f"{ctx.prefix}/{component}/{_safe(ctx.node_id)}/{object_id}/config"


def object_ids(ctx: DiscoveryContext) -> list[tuple[str, str]]:
    """Every (component, object id) this node publishes now."""
    out = [("sensor", "card")]
    for pda in ctx.pdas:
        out += [("button", f"sync_{_safe(pda)}"), ("sensor", f"last_result_{_safe(pda)}")]
        if pda in ctx.presence:
            out.append(("binary_sensor", f"presence_{_safe(pda)}"))
    return out


def _device(ctx: DiscoveryContext) -> dict[str, object]:
    return {
        "identifiers": [f"simsync_{ctx.node_id}"],
        "name": f"simsync {ctx.node_id}",
        "model": "simsync SIM phonebook sync",
        "manufacturer": "simsync",
        "sw_version": ctx.version,
    }


def _common(ctx: DiscoveryContext, object_id: str, name: str) -> dict[str, object]:
    return {
        "name": name,
        "unique_id": f"simsync_{_safe(ctx.node_id)}_{object_id}",
        "object_id": f"simsync_{_safe(ctx.node_id)}_{object_id}",
        "device": _device(ctx),
        "availability": [
            {
                "topic": f"{ctx.root}/status",
                "value_template": "{{ value_json.state }}",
                "payload_available": "online",
                "payload_not_available": "offline",
            }
        ],
        "qos": 1,
    }


def _last_result(ctx: DiscoveryContext, pda: str) -> dict[str, object]:
    # Results of every PDA share ROOT/sync/result: each sensor keeps its state
    # (``this``) when the result is another PDA's.
    mine = f"value_json.pda == {json.dumps(pda)}"
    return {
        **_common(ctx, f"last_result_{_safe(pda)}", f"Last sync {pda}"),
        "state_topic": f"{ctx.root}/sync/result",
        "value_template": (
            f"{{% if {mine} %}}"
            "{{ 'ok' if value_json.ok else value_json.error.code }}"
            "{% else %}{{ this.state }}{% endif %}"
        ),
        "json_attributes_topic": f"{ctx.root}/sync/result",
        "json_attributes_template": (
            f"{{% if {mine} %}}{{{{ value_json | tojson }}}}"
            "{% else %}{{ this.attributes | tojson }}{% endif %}"
        ),
        "icon": "mdi:account-sync",
    }


def discovery_configs(ctx: DiscoveryContext) -> list[tuple[str, bytes]]:
    """Every retained discovery config of this node as (topic, JSON payload)."""
    configs: list[tuple[str, dict[str, object]]] = [
        (
            config_topic(ctx, "sensor", "card"),
            {
                **_common(ctx, "card", "SIM card"),
                "state_topic": f"{ctx.root}/status",
                "value_template": "{{ value_json.card }}",
                "device_class": "enum",
                "options": ["present", "absent", "blocked", "unknown"],
                "icon": "mdi:sim",
            },
        )
    ]
    for pda in ctx.pdas:
        button = f"sync_{_safe(pda)}"
        configs.append(
            (
                config_topic(ctx, "button", button),
                {
                    **_common(ctx, button, f"Sync now {pda}"),
                    "command_topic": f"{ctx.root}/sync/request",
                    "payload_press": json.dumps({"pda": pda}),
                    "icon": "mdi:sync",
                },
            )
        )
        configs.append(
            (config_topic(ctx, "sensor", f"last_result_{_safe(pda)}"), _last_result(ctx, pda))
        )
        if pda in ctx.presence:
            obj = f"presence_{_safe(pda)}"
            configs.append(
                (
                    config_topic(ctx, "binary_sensor", obj),
                    {
                        **_common(ctx, obj, f"Presence {pda}"),
                        # Retained near/away of its own (docs/daemon.md): ROOT/status keeps
                        # exactly the spec's keys, and an event stream has no state to show
                        # after a Home Assistant restart.
                        "state_topic": Topics(ctx.root).presence(pda),
                        "payload_on": "near",
                        "payload_off": "away",
                        "device_class": "presence",
                        "icon": "mdi:bluetooth",
                    },
                )
            )
    return [(t, json.dumps(c, separators=(",", ":")).encode()) for t, c in configs]


def stale_config(ctx: DiscoveryContext, topic: str, payload: bytes) -> bool:
    """A retained config seen on the broker that belongs to this node but not to
    ``ctx`` any more (clear it). Empty payloads are clearings already."""
    if not payload:
        return False
    parts = topic.split("/")
    prefix = ctx.prefix.split("/")
    if len(parts) != len(prefix) + 4 or parts[: len(prefix)] != prefix:
        return False
    component, node, object_id, last = parts[len(prefix) :]
    if node != _safe(ctx.node_id) or last != "config":
        return False
    return (component, object_id) not in set(object_ids(ctx))


def subscriptions(ctx: DiscoveryContext) -> Iterable[str]:
    """Topic filters that show this node's retained configs (to find stale ones)."""
    return [f"{ctx.prefix}/+/{_safe(ctx.node_id)}/+/config"]
