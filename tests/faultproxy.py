"""A TCP proxy of the tests' own, between cachekit and a test server, that injects network faults.

It runs an asyncio loop in a background thread and listens on a free loopback port; every connection
it accepts is forwarded to the target (a test Redis or Memcached). The controls, callable from any
thread, take effect at once:

- :meth:`FaultProxy.set_latency` delays every chunk, each way, by that many seconds;
- :meth:`FaultProxy.cut` aborts every open connection (new ones are accepted as usual);
- :meth:`FaultProxy.blackhole` accepts connections and reads what they send, but forwards nothing and
  answers nothing (a server that hangs, or a firewall that drops packets);
- :meth:`FaultProxy.kill_pubsub` aborts only the connections that sent ``SUBSCRIBE`` / ``PSUBSCRIBE`` /
  ``SSUBSCRIBE`` (Redis pub/sub; what ``CLIENT KILL TYPE pubsub``, a proxy's idle timeout or Redis's
  output-buffer limit does), and with ``hold`` delays the next subscriptions by that long (a slow
  reconnect: the gap in which published messages are lost);
- :meth:`FaultProxy.split_answers` forwards the first line of the answer to a request matching a pattern
  at once and the rest only ``hold`` seconds later (an answer of two pipelined commands, late in the
  middle: memcached's ``set`` + ``get``);
- :meth:`FaultProxy.restore` undoes latency, black-hole, hold and split.

Nothing here imports pytest; ``tests/runtime/test_faults.py`` uses it.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FaultProxy"]

HOST = "127.0.0.1"
_SUBSCRIBE = re.compile(rb"\b[PS]?SUBSCRIBE\b", re.IGNORECASE)
_CHUNK = 65536


@dataclass(eq=False)  # hashed by identity: kept in a set
class _Link:
    """One client connection and, unless black-holed, its upstream connection."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    pubsub: bool = False
    split: bool = False  # the next answer is split after its first line (split_answers)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                writer.transport.abort()


class FaultProxy:
    """Forward ``127.0.0.1:<port>`` to ``target_host:target_port``, with faults on demand.

    >>> proxy = FaultProxy("127.0.0.1", server.port).start()    # doctest: +SKIP
    >>> proxy.blackhole(); ...; proxy.restore(); proxy.stop()     # doctest: +SKIP
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.host = HOST
        self.port = 0
        self.latency = 0.0
        self.blackholed = False
        self.hold_subscribe_until = 0.0
        self.pubsub_muted = False
        self.split_pattern: re.Pattern[bytes] | None = None
        self.split_hold = 0.0
        #: answers split (split_answers)
        self.splits = 0
        #: connections accepted, connections aborted by cut/kill_pubsub, pub/sub connections killed
        self.accepted = 0
        self.aborted = 0
        self.pubsub_killed = 0
        self._links: set[_Link] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()

    # -- life cycle -------------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        """Start the loop thread and listen; returns ``self`` once connections are accepted."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, 0))
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._run, args=(sock,), name="faultproxy", daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self

    def stop(self) -> None:
        """Abort every connection, stop listening and end the loop thread."""
        loop = self._loop
        if loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``."""
        return f"{self.host}:{self.port}"

    @property
    def open_connections(self) -> int:
        """Client connections open right now."""
        return len(self._links)

    # -- controls ---------------------------------------------------------------------------------
    def set_latency(self, seconds: float) -> None:
        """Delay every chunk, each way, by ``seconds``."""
        self.latency = seconds

    def blackhole(self, on: bool = True) -> None:
        """Accept and read, never forward nor answer (``on = False``: forward again)."""
        self.blackholed = on

    def cut(self) -> int:
        """Abort every open connection; return how many."""
        return self._call(lambda: self._abort(lambda link: True))

    def kill_pubsub(self, hold: float = 0.0) -> int:
        """Abort the connections that subscribed; delay new subscriptions by ``hold`` seconds."""
        self.hold_subscribe_until = time.monotonic() + hold
        killed = self._call(lambda: self._abort(lambda link: link.pubsub))
        self.pubsub_killed += killed
        return killed

    def mute_pubsub(self, on: bool = True) -> None:
        """Keep the connections that subscribed open but deliver nothing to them (a half-open link)."""
        self.pubsub_muted = on

    def split_answers(self, pattern: bytes, hold: float) -> None:
        """After a request matching ``pattern`` (a regex), forward its answer's first line at once and the
        rest ``hold`` seconds later."""
        self.split_hold = hold
        self.split_pattern = re.compile(pattern)

    def restore(self) -> None:
        """No latency, no black-hole, no held or muted subscriptions, no split answers."""
        self.split_pattern = None
        self.latency = 0.0
        self.blackholed = False
        self.pubsub_muted = False
        self.hold_subscribe_until = 0.0

    # -- the loop ---------------------------------------------------------------------------------
    def _call(self, fn: Any) -> Any:
        loop = self._loop
        if loop is None:
            raise RuntimeError("fault proxy is not running")

        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), loop).result(10)

    def _abort(self, which: Any) -> int:
        chosen = [link for link in self._links if which(link)]
        for link in chosen:
            link.abort()
            self._links.discard(link)
        self.aborted += len(chosen)
        return len(chosen)

    def _run(self, sock: socket.socket) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._server = loop.run_until_complete(asyncio.start_server(self._accept, sock=sock))
            self._started.set()
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        self._abort(lambda link: True)
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        link = _Link(client=writer)
        self._links.add(link)
        try:
            if self.blackholed:
                await self._swallow(reader)
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.target)
            except OSError:
                return
            link.upstream = up_writer
            if link not in self._links:  # cut while connecting
                link.abort()
                return
            await asyncio.gather(
                self._pump(reader, up_writer, link, inspect=True),
                self._pump(up_reader, writer, link, inspect=False),
                return_exceptions=True,
            )
        finally:
            self._links.discard(link)
            link.abort()

    @staticmethod
    async def _swallow(reader: asyncio.StreamReader) -> None:
        while await reader.read(_CHUNK):
            pass

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link,
                    *, inspect: bool) -> None:
        try:
            while True:
                data = await reader.read(_CHUNK)
                if not data:
                    break
                if inspect and _SUBSCRIBE.search(data):
                    link.pubsub = True
                    wait = self.hold_subscribe_until - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                if inspect and self.split_pattern is not None and self.split_pattern.search(data):
                    link.split = True
                if not inspect and link.split and b"\r\n" in data:
                    link.split = False
                    self.splits += 1
                    first = data.index(b"\r\n") + 2
                    writer.write(data[:first])
                    await writer.drain()
                    await asyncio.sleep(self.split_hold)
                    data = data[first:]
                if self.latency:
                    await asyncio.sleep(self.latency)
                if self.blackholed or (self.pubsub_muted and link.pubsub and not inspect):
                    continue  # read and dropped: the other side never hears of it
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            link.abort()
