"""Cross-process invalidation of L1 tiers over Redis pub/sub.

Every write, forget or invalidation in a region with an L1 publishes a small JSON message; every
other runtime subscribed to the channel drops the named keys (or the whole L1) of that region.
If the bus is down, L1 TTLs bound staleness: errors are counted, logged once per outage, the
subscriber reconnects with backoff, and on reconnect every L1 is cleared (messages may have been
missed while it was away).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol

__all__ = ["Broadcast", "Bus"]

log = logging.getLogger("cachekit.bus")


class Bus:
    """Publish/subscribe L1 invalidations on one Redis channel.

    ``on_message(payload)`` is called in the bus thread for messages from other runtimes;
    ``on_reconnect()`` after the subscription comes back from an outage.
    """

    def __init__(self, client: Any, channel: str, origin: str, *,
                 on_message: Callable[[dict[str, Any]], None], on_reconnect: Callable[[], None]) -> None:
        self.client = client
        self.channel = channel
        self.origin = origin
        self.on_message = on_message
        self.on_reconnect = on_reconnect
        self.published = 0
        self.received = 0
        self.errors = 0
        self.down = False
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cachekit-bus", daemon=True)
        self._thread.start()

    def wait_ready(self, timeout: float = 5.0) -> bool:
        """Block until the subscription is live (useful in tests and at start-up)."""
        return self._ready.wait(timeout)

    def publish(self, region: str, kind: str, keys: list[str] | None = None, **extra: Any) -> bool:
        """Send one message (``extra``: more JSON fields; values JSON cannot carry go as ``str``)."""
        message = json.dumps({"o": self.origin, "r": region, "k": kind, "keys": keys or [], **extra}, default=str)
        try:
            self.client.publish(self.channel, message)
        except Exception as exc:
            self._failed(exc)
            return False
        self.published += 1
        return True

    def _failed(self, exc: BaseException) -> None:
        self.errors += 1
        if not self.down:
            self.down = True
            log.warning("cachekit bus on %r is down (%s); L1 TTLs bound staleness until it returns",
                        self.channel, exc)

    def _run(self) -> None:
        pubsub = None
        backoff = 0.05
        had_outage = False
        while not self._stop.is_set():
            try:
                if pubsub is None:
                    pubsub = self.client.pubsub(ignore_subscribe_messages=False)
                    pubsub.subscribe(self.channel)
                    # the subscribe reply confirms the subscription is registered on the server
                    for _ in range(50):
                        msg = pubsub.get_message(ignore_subscribe_messages=False, timeout=0.1)
                        if msg and msg.get("type") == "subscribe":
                            break
                    self._ready.set()
                    if had_outage:
                        had_outage = False
                        if self.down:
                            self.down = False
                            log.warning("cachekit bus on %r is back", self.channel)
                        self.on_reconnect()
                    backoff = 0.05
                msg = pubsub.get_message(timeout=0.2)
                if msg and msg.get("type") == "message":
                    self._deliver(msg["data"])
            except Exception as exc:
                if self._stop.is_set():
                    break
                self._failed(exc)
                had_outage = True
                self._ready.clear()
                try:
                    if pubsub is not None:
                        pubsub.close()
                except Exception:
                    pass
                pubsub = None
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 2.0)
        if pubsub is not None:
            try:
                pubsub.close()
            except Exception:
                pass

    def _deliver(self, data: Any) -> None:
        try:
            payload = json.loads(data)
        except (TypeError, ValueError):
            self.errors += 1
            return
        if payload.get("o") == self.origin:
            return
        self.received += 1
        self.on_message(payload)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


class L1Receiver(Protocol):
    """What :class:`Broadcast` needs of a region: its name and a way to drop L1 keys."""

    name: str

    def drop_l1(self, keys: Iterable[str] | None) -> None: ...


class Broadcast:
    """The runtime's news: ``subscribe()`` listeners in this process, and the L1 sync with the
    other processes over the :class:`Bus` (started on first need, see ``start``).

    A region tells it about L1-relevant changes (``publish``); a message from another process is
    applied here (``receive``): the named keys (or the whole L1) of that region are dropped, and an
    event is handed to this process's listeners too.
    """

    def __init__(self, regions: Callable[[], Iterable[L1Receiver]]) -> None:
        self._regions = regions
        self._listeners: list[Callable[[str, str, Any], None]] = []
        self._lock = threading.Lock()
        self.bus: Bus | None = None

    # -- listeners in this process -------------------------------------------------------
    def subscribe(self, listener: Callable[[str, str, Any], None]) -> Callable[[], None]:
        """Call ``listener(kind, name, payload)`` on invalidations and events; returns an unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def notify(self, kind: str, name: str, payload: Any) -> None:
        for listener in list(self._listeners):
            listener(kind, name, payload)

    # -- the other processes -------------------------------------------------------------
    def start(self, make_bus: Callable[[Callable[[dict[str, Any]], None], Callable[[], None]], Bus]) -> None:
        """Start the bus once: ``make_bus(on_message, on_reconnect)``."""
        if self.bus is not None:
            return
        with self._lock:
            if self.bus is None:
                self.bus = make_bus(self.receive, self.clear_all)

    def publish(self, region: str, kind: str, key: Any) -> bool:
        """An L1-relevant change happened in ``region``: tell the other processes' L1s. ``False``
        when the bus failed (the region counts it)."""
        bus = self.bus
        if bus is None:
            return True
        keys = None if key is None else (list(key) if isinstance(key, list) else [key])
        return bus.publish(region, kind, keys)

    def publish_event(self, event: str, params: dict[str, Any]) -> None:
        """The ``subscribe()`` listeners of the other processes hear ``event`` (a failure: bus.errors)."""
        if self.bus is not None:
            self.bus.publish("", "event", None, e=event, p=params)

    def receive(self, payload: dict[str, Any]) -> None:
        """Apply a message from another process (in the bus thread)."""
        if payload.get("k") == "event":  # another process emitted: its listeners here hear it too
            try:
                self.notify("event", str(payload.get("e")), payload.get("p") or {})
            except Exception:  # a listener's bug must not stop the bus thread
                logging.getLogger("cachekit").exception("cachekit: a subscribe() listener failed on a bus event")
            return
        name = payload.get("r")
        for region in self._regions():
            if region.name == name:
                region.drop_l1(None if payload.get("k") == "clear" else (payload.get("keys") or ()))

    def clear_all(self) -> None:
        """Back from an outage: messages may have been missed, so every L1 starts over."""
        for region in self._regions():
            region.drop_l1(None)

    def close(self) -> None:
        if self.bus is not None:
            self.bus.close()
            self.bus = None
