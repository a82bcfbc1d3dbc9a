"""Home Assistant discovery configs (pure): topics, device block, stale configs."""

from __future__ import annotations

import json

from daemon.discovery import DiscoveryContext, discovery_configs, stale_config, subscriptions

CTX = DiscoveryContext(
    node_id="phone1", root="simsync/phone1", prefix="homeassistant", version="1.2.3",
    pdas=("pda1", "office.pda"),
)  # fmt: skip


def configs(ctx: DiscoveryContext = CTX) -> dict[str, dict[str, object]]:
    return {topic: json.loads(payload) for topic, payload in discovery_configs(ctx)}


def test_topics_one_device_and_availability() -> None:
    got = configs()
    assert sorted(got) == [
        "homeassistant/button/phone1/sync_office_2e_pda/config",
        "homeassistant/button/phone1/sync_pda1/config",
        "homeassistant/sensor/phone1/card/config",
        "homeassistant/sensor/phone1/last_result_office_2e_pda/config",
        "homeassistant/sensor/phone1/last_result_pda1/config",
    ]
    devices = {json.dumps(c["device"], sort_keys=True) for c in got.values()}
    assert len(devices) == 1
    device = next(iter(got.values()))["device"]
    assert device == {
        "identifiers": ["simsync_phone1"],
        "name": "simsync phone1",
        "model": "simsync SIM phonebook sync",
        "manufacturer": "simsync",
        "sw_version": "1.2.3",
    }
    for c in got.values():
        assert c["availability"] == [
            {
                "topic": "simsync/phone1/status",
                "value_template": "{{ value_json.state }}",
                "payload_available": "online",
                "payload_not_available": "offline",
            }
        ]
    ids = [c["unique_id"] for c in got.values()]
    assert len(set(ids)) == len(ids)


def test_button_sends_a_request_and_sensors_read_the_spec_topics() -> None:
    got = configs()
    button = got["homeassistant/button/phone1/sync_pda1/config"]
    assert button["command_topic"] == "simsync/phone1/sync/request"
    assert json.loads(str(button["payload_press"])) == {"pda": "pda1"}
    assert button["name"] == "Sync now pda1"
    card = got["homeassistant/sensor/phone1/card/config"]
    assert card["state_topic"] == "simsync/phone1/status"
    assert card["value_template"] == "{{ value_json.card }}"
    last = got["homeassistant/sensor/phone1/last_result_office_2e_pda/config"]
    assert last["state_topic"] == "simsync/phone1/sync/result"
    assert last["json_attributes_topic"] == "simsync/phone1/sync/result"
    assert last["value_template"] == (
        '{% if value_json.pda == "office.pda" %}'
        "{{ 'ok' if value_json.ok else value_json.error.code }}"
        "{% else %}{{ this.state }}{% endif %}"
    )


def test_presence_sensor_only_when_watched() -> None:
    ctx = DiscoveryContext(**{**CTX.__dict__, "presence": frozenset({"pda1"})})
    got = configs(ctx)
    presence = got["homeassistant/binary_sensor/phone1/presence_pda1/config"]
    assert presence["device_class"] == "presence"
    assert presence["state_topic"] == "simsync/phone1/pda/pda1/presence"
    assert (presence["payload_on"], presence["payload_off"]) == ("near", "away")
    assert presence["name"] == "Presence pda1"
    # Stale-config cleaning knows it: kept while watched, stale once not.
    topic = "homeassistant/binary_sensor/phone1/presence_pda1/config"
    assert not stale_config(ctx, topic, b"{}")
    assert stale_config(CTX, topic, b"{}")
    assert not any("presence_office" in t for t in got)


def test_stale_configs_are_recognised() -> None:
    assert subscriptions(CTX) == ["homeassistant/+/phone1/+/config"]
    for topic, payload in discovery_configs(CTX):
        assert not stale_config(CTX, topic, payload)
    gone = "homeassistant/button/phone1/sync_oldpda/config"
    assert stale_config(CTX, gone, b"{}")
    assert not stale_config(CTX, gone, b"")  # already cleared
    assert not stale_config(CTX, "homeassistant/button/phone2/sync_oldpda/config", b"{}")
    assert not stale_config(CTX, "homeassistant/button/phone1/sync_oldpda/state", b"{}")
    assert not stale_config(CTX, "other/button/phone1/sync_oldpda/config", b"{}")
    deep = DiscoveryContext(**{**CTX.__dict__, "prefix": "ha/disc"})
    assert stale_config(deep, "ha/disc/sensor/phone1/last_result_x/config", b"{}")
    assert not stale_config(deep, "ha/disc/sensor/phone1/card/config", b"{}")
