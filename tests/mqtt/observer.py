"""A test's own MQTT client (paho, independent of the daemon's aiomqtt session).

It records every message it receives and lets a test await one with a time-out::

    obs = await Observer.connect(broker, "simsync/phone/#")
    obs.publish("simsync/phone/sync/request", {"id": "r1"})
    result = await obs.expect("simsync/phone/sync/result", id="r1")

paho runs its network loop in its own thread; ``close()`` stops and joins it.
"""

from __future__ import annotations

import asyncio
import functools
import json
import ssl
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from tests.fixtures.mosquitto import USERS, Broker

TIMEOUT = 20.0


@dataclass(frozen=True)
class Msg:
    """One received message."""

    topic: str
    payload: bytes
    retain: bool

    @functools.cached_property
    def _parsed(self) -> Any:
        try:
            return json.loads(self.payload)
        except ValueError:
            return _NOT_JSON

    def json(self) -> Any:
        """The payload as JSON (raises for a payload that is not)."""
        if self._parsed is _NOT_JSON:
            raise ValueError(f"not JSON: {self.payload[:100]!r}")
        return self._parsed


_NOT_JSON = object()


class Observer:
    """See the module docstring."""

    def __init__(self, broker: Broker, *, user: str | None = None) -> None:
        self.broker = broker
        self.loop = asyncio.get_running_loop()
        self.messages: list[Msg] = []
        self._taken: set[int] = set()
        self._first_free = 0  # every message before it is taken
        self._new = asyncio.Event()
        self._connected = asyncio.Event()
        self.online: Any = None  # a test's note of the first online status it saw
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
        if user is None and broker.auth:
            user = "observer"
        if user is not None:
            self.client.username_pw_set(user, USERS[user][0])
        if broker.tls:
            assert broker.ca_file is not None
            self.client.tls_set(ca_certs=str(broker.ca_file), cert_reqs=ssl.CERT_REQUIRED)
        self.client.max_inflight_messages_set(1000)  # a test's burst goes out at once
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect

    @classmethod
    async def connect(cls, broker: Broker, *topics: str, user: str | None = None) -> Observer:
        """Connected and subscribed (SUBACK received) to ``topics``."""
        obs = cls(broker, user=user)
        obs.client.connect("127.0.0.1", broker.port)
        obs.client.loop_start()
        try:
            async with asyncio.timeout(TIMEOUT):
                await obs._connected.wait()
            for topic in topics:
                await obs.subscribe(topic)
        except BaseException:
            obs.close()
            raise
        return obs

    async def subscribe(self, topic: str) -> None:
        """Subscribe at QoS 1 and wait for the SUBACK."""
        acked = asyncio.Event()

        def on_subscribe(*_: Any) -> None:
            self.loop.call_soon_threadsafe(acked.set)

        self.client.on_subscribe = on_subscribe
        rc, _ = self.client.subscribe(topic, qos=1)
        assert rc == paho.MQTT_ERR_SUCCESS
        async with asyncio.timeout(TIMEOUT):
            await acked.wait()

    def _on_connect(self, *_: Any) -> None:
        self.loop.call_soon_threadsafe(self._connected.set)

    def _on_message(self, _c: Any, _u: Any, message: paho.MQTTMessage) -> None:
        msg = Msg(message.topic, bytes(message.payload), bool(message.retain))
        self.loop.call_soon_threadsafe(self._add, msg)

    def _add(self, msg: Msg) -> None:
        self.messages.append(msg)
        self._new.set()

    def publish(
        self,
        topic: str,
        payload: bytes | str | dict[str, Any],
        *,
        qos: int = 1,
        retain: bool = False,
    ) -> None:
        """Publish (a dict is sent as JSON); returns once paho queued it."""
        data = json.dumps(payload).encode() if isinstance(payload, dict) else payload
        info = self.client.publish(topic, data, qos=qos, retain=retain)
        assert info.rc == paho.MQTT_ERR_SUCCESS

    def _find(self, topic: str, where: dict[str, Any], raw: bytes | None) -> Msg | None:
        while self._first_free in self._taken:
            self._first_free += 1
        for i in range(self._first_free, len(self.messages)):
            msg = self.messages[i]
            if i in self._taken or msg.topic != topic:
                continue
            if raw is not None:
                if msg.payload != raw:
                    continue
            elif where:
                obj = msg._parsed
                if not isinstance(obj, dict) or any(obj.get(k) != v for k, v in where.items()):
                    continue
            self._taken.add(i)
            return msg
        return None

    async def expect_msg(
        self, topic: str, *, raw: bytes | None = None, within: float = TIMEOUT, **where: Any
    ) -> Msg:
        """The first message on ``topic`` not taken yet whose JSON has ``where``'s values
        (or whose payload is ``raw``); waits for it at most ``within`` seconds."""
        try:
            async with asyncio.timeout(within):
                while (msg := self._find(topic, where, raw)) is None:
                    self._new.clear()
                    await self._new.wait()
        except TimeoutError:
            seen = [(m.topic, m.payload[:200]) for m in self.messages[-10:]]
            raise AssertionError(
                f"no message on {topic} with {where or raw!r} in {within} s; last seen: {seen}"
            ) from None
        return msg

    async def expect(self, topic: str, *, within: float = TIMEOUT, **where: Any) -> Any:
        """``expect_msg`` and its JSON."""
        return (await self.expect_msg(topic, within=within, **where)).json()

    def count(self, topic: str) -> int:
        """Messages received on ``topic`` so far."""
        return sum(1 for m in self.messages if m.topic == topic)

    def close(self) -> None:
        """Disconnect, join paho's thread, and close its sockets now.

        paho leaves to ``__del__`` its wake-up socket pair (TCP on 127.0.0.1) and the
        broker socket when its thread ends before the broker's close is read: collected
        later, they raise ResourceWarning in whichever test runs then, an error under
        ``filterwarnings = error`` (seen in random order and with a collection after every
        test). No public call closes them.
        """
        self.client.disconnect()
        self.client.loop_stop()
        self.client._reset_sockets()
