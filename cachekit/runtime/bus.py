"""Cross-process invalidation of L1 tiers over Redis pub/sub, and when an L1 may be trusted.

Every write, forget or invalidation in a region with an L1 publishes a small JSON message; every
other runtime subscribed to the channel drops the named keys (or the whole L1) of that region.

The guarantee (docs/multi-level.md): once a write has returned in one process, no other process
serves the old value from its L1 for longer than the bus latency plus ``3 x [bus] heartbeat``. The
bus keeps it by trusting L1s only while it is *whole*; a gap is any moment a message may have been
lost, and is detected by

- an error on the subscription or a publish (the bus is *down*),
- a reconnect of the subscriber's connection, even one redis-py made silently (it re-subscribes by
  itself, and what was published meanwhile is lost),
- a jump in a publisher's sequence numbers (each process numbers its messages and heartbeats),
- its own heartbeat (one every ``heartbeat`` seconds) not coming back within three intervals.

On a gap every L1 of the runtime is emptied and L1 reads and fills are bypassed (reads go to L2); the
gap is counted (``Bus.gaps``) and logged once. The bus is whole again when a heartbeat of its own,
sent after the gap, comes back through its subscription: every L1 is emptied once more and trusted
again.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from .l1 import Gate

__all__ = ["Broadcast", "Bus"]

log = logging.getLogger("cachekit.bus")


class Bus:
    """Publish/subscribe L1 invalidations on one Redis channel; keep ``gate.whole`` honest.

    ``on_message(payload)`` is called in the bus thread for messages from other runtimes;
    ``on_reconnect()`` whenever the L1s must start over (a gap, and the bus whole again).
    """

    def __init__(self, client: Any, channel: str, origin: str, *,
                 on_message: Callable[[dict[str, Any]], None], on_reconnect: Callable[[], None],
                 heartbeat: float = 1.0, gate: Gate | None = None) -> None:
        self.client = client
        self.channel = channel
        self.origin = origin
        self.on_message = on_message
        self.on_reconnect = on_reconnect
        self.heartbeat = heartbeat
        #: ``gate.whole``: the L1s of this runtime may be trusted (read by every L1 hit)
        self.gate = gate if gate is not None else Gate(False)
        self.gate.whole = False
        self.published = 0
        self.received = 0
        self.errors = 0
        #: times the bus stopped being whole after it had been (each logged once)
        self.gaps = 0
        self.down = False
        self._seq = itertools.count(1)
        self._beat_seq = 0  # the last heartbeat sent (bus thread)
        self._probe = 0  # whole again once an own heartbeat numbered above this comes back
        self._own_back = time.monotonic()  # when an own heartbeat last came back
        self._peers: dict[str, list[Any]] = {}  # origin -> [last number, {missing number: since}]
        self._state = threading.Lock()
        self._reconnected = False
        self._conn: Any = None
        self._conn_retry: Any = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cachekit-bus", daemon=True)
        self._thread.start()

    @property
    def whole(self) -> bool:
        """No message may have been lost since the L1s were last emptied: they may be trusted."""
        return self.gate.whole

    def wait_ready(self, timeout: float = 5.0) -> bool:
        """Block until the subscription is live and the bus whole (useful in tests and at start-up)."""
        return self._ready.wait(timeout)

    def publish(self, region: str, kind: str, keys: list[str] | None = None, **extra: Any) -> bool:
        """Send one message (``extra``: more JSON fields; values JSON cannot carry go as ``str``)."""
        message = json.dumps({"o": self.origin, "s": next(self._seq), "r": region, "k": kind,
                              "keys": keys or [], **extra}, default=str)
        try:
            self.client.publish(self.channel, message)
        except Exception as exc:
            self._failed(exc)
            return False
        self.published += 1
        return True

    # -- gaps ------------------------------------------------------------------------------
    def _failed(self, exc: BaseException) -> None:
        self.errors += 1
        if not self.down:
            self.down = True
            log.warning("cachekit bus on %r is down (%s); L1 reads go to L2 until it is back",
                        self.channel, exc)
        self._gap(None)

    def _gap(self, reason: str | None) -> None:
        """A message may have been lost: distrust and empty every L1 (logged once per gap)."""
        with self._state:
            self._probe = self._beat_seq
            self._peers = {}
            if not self.gate.whole:
                return
            self.gate.whole = False
            self._ready.clear()
            self.gaps += 1
        if reason is not None:
            log.warning("cachekit bus on %r has a gap (%s); L1 reads go to L2 until it is whole again",
                        self.channel, reason)
        self.on_reconnect()

    def _whole_again(self) -> None:
        """An own heartbeat sent after the last gap came back: empty the L1s once more, then trust them."""
        with self._state:
            if self.gate.whole:
                return
            self.on_reconnect()  # what was read from L2 before now is not parked in L1 (epochs move)
            self.gate.whole = True
            if self.gaps or self.down:
                log.info("cachekit bus on %r is whole again; L1s start over", self.channel)
            self.down = False
            self._ready.set()

    def _on_connect(self, connection: Any) -> None:
        """redis-py re-established the subscriber's connection (and re-subscribed by itself)."""
        if connection is self._conn:
            self._reconnected = True  # the bus thread sends a heartbeat at once
            self._gap("its subscriber connection was re-established; messages may have been lost")

    def _sequence(self, origin: str, seq: int, now: float) -> None:
        peer = self._peers.get(origin)
        if peer is None:
            self._peers[origin] = [seq, {}]
            return
        last, missing = peer
        if seq > last + 1:
            if seq - last > 1000:
                self._gap(f"{seq - last - 1} messages of {origin} missing")
                return
            for n in range(last + 1, seq):
                missing[n] = now
        if seq > last:
            peer[0] = seq
        else:
            missing.pop(seq, None)

    def _check(self, now: float) -> None:
        if not self.gate.whole:
            return
        if now - self._own_back > 3 * self.heartbeat:
            self._gap(f"no heartbeat of its own came back for {now - self._own_back:.1f}s")
            return
        window = self.heartbeat / 2  # concurrent publishers of one process may arrive out of order
        for origin, (_, missing) in list(self._peers.items()):
            if missing and min(missing.values()) < now - window:
                self._gap(f"{len(missing)} message(s) of {origin} missing")
                return

    # -- the bus thread --------------------------------------------------------------------
    def _beat(self) -> None:
        seq = next(self._seq)
        self.client.publish(self.channel, json.dumps({"o": self.origin, "s": seq, "k": "beat"}))
        self._beat_seq = seq

    def _watch(self, conn: Any) -> None:
        """Hear of every reconnect of the subscriber's connection, and make a broken one raise at
        once (redis-py would otherwise retry with backoff until the server is back, then re-subscribe
        silently: the gap must be seen when the connection breaks, before another process can write)."""
        if conn is None or not hasattr(conn, "register_connect_callback"):
            return
        self._conn = conn
        conn.register_connect_callback(self._on_connect)
        try:
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            self._conn_retry = conn.retry
            conn.retry = Retry(NoBackoff(), 0)
        except (ImportError, AttributeError):
            self._conn_retry = None

    def _drop_conn(self) -> None:
        """Give the subscriber's connection back as it was (it returns to the client's pool)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.deregister_connect_callback(self._on_connect)
                if self._conn_retry is not None:
                    conn.retry = self._conn_retry
            except Exception:
                pass

    def _run(self) -> None:
        pubsub = None
        backoff = 0.05
        next_beat = 0.0
        poll = min(0.2, self.heartbeat / 4)
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
                    self._watch(getattr(pubsub, "connection", None))
                    self._reconnected = False
                    self._own_back = time.monotonic()
                    next_beat = 0.0  # a heartbeat at once: the bus is whole when it comes back
                    backoff = 0.05
                now = time.monotonic()
                if now >= next_beat:
                    next_beat = now + self.heartbeat
                    self._beat()
                msg = pubsub.get_message(timeout=poll)
                now = time.monotonic()
                if msg and msg.get("type") == "message":
                    self._deliver(msg["data"], now)
                if self._reconnected:
                    self._reconnected = False
                    self._own_back = now
                    next_beat = 0.0
                self._check(now)
            except Exception as exc:
                if self._stop.is_set():
                    break
                if self._reconnected:  # the connection broke and came back: a gap, opened already
                    self._reconnected = False
                    self.errors += 1
                else:
                    self._failed(exc)
                self._drop_conn()
                try:
                    if pubsub is not None:
                        pubsub.close()
                except Exception:
                    pass
                pubsub = None
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 2.0)
        self._drop_conn()
        if pubsub is not None:
            try:
                pubsub.close()
            except Exception:
                pass

    def _deliver(self, data: Any, now: float) -> None:
        try:
            payload = json.loads(data)
        except (TypeError, ValueError):
            self.errors += 1
            return
        seq = payload.get("s")
        if payload.get("o") == self.origin:
            if payload.get("k") == "beat":
                self._own_back = now
                if not self.gate.whole and isinstance(seq, int) and seq > self._probe:
                    self._whole_again()
            return
        if isinstance(seq, int):
            self._sequence(str(payload.get("o")), seq, now)
        if payload.get("k") == "beat":
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
        #: shared by every L1 of the runtime: whole without a bus, else while the bus is whole
        self.gate = Gate()

    # -- listeners in this process -------------------------------------------------------
    def subscribe(self, listener: Callable[[str, str, Any], None]) -> Callable[[], None]:
        """Call ``listener(kind, name, payload)`` on invalidations and events; returns an unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def notify(self, kind: str, name: str, payload: Any) -> None:
        for listener in list(self._listeners):
            listener(kind, name, payload)

    # -- the other processes -------------------------------------------------------------
    def start(self, make_bus: Callable[[Callable[[dict[str, Any]], None], Callable[[], None], Gate], Bus]) -> None:
        """Start the bus once: ``make_bus(on_message, on_reconnect, gate)``; the L1s are bypassed
        until it is whole."""
        if self.bus is not None:
            return
        with self._lock:
            if self.bus is None:
                self.gate.whole = False
                try:
                    self.bus = make_bus(self.receive, self.clear_all, self.gate)
                except BaseException:
                    self.gate.whole = True  # no bus after all: L1 TTLs bound staleness
                    raise

    @property
    def gaps(self) -> int:
        """Times the bus stopped being whole (L1s emptied and bypassed until it was again)."""
        return 0 if self.bus is None else self.bus.gaps

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
        """A gap, or whole again: messages may have been missed, so every L1 starts over."""
        for region in self._regions():
            region.drop_l1(None)

    def close(self) -> None:
        if self.bus is not None:
            self.bus.close()
            self.bus = None
            self.gate.whole = True
