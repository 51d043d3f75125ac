"""Real Redis and memcached servers for the tests, on free loopback ports.

Each server is a child process that the test session starts and stops. A server can be stopped and
started again on the same port (to test what a driver does when its server dies). The machine's own
Redis on port 6379 is never touched: every port here comes from the kernel (bind to port 0).

Used by the fixtures in ``tests/conftest.py``; nothing here imports pytest.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis
    import redis.cluster

__all__ = [
    "HOST",
    "MemcachedPool",
    "MemcachedServer",
    "RedisCluster",
    "RedisSentinel",
    "RedisServer",
    "ServerError",
    "ServerProcess",
    "ask",
    "free_port",
    "missing_binaries",
]

HOST = "127.0.0.1"
START_TIMEOUT = 10.0
START_ATTEMPTS = 5

_running: set[ServerProcess] = set()


class ServerError(RuntimeError):
    """A server did not start or did not become ready in time."""


def free_port() -> int:
    """A loopback port that was free a moment ago (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def in_ci() -> bool:
    """``CI=true``: what a test needs must be there; a missing piece fails instead of skipping."""
    return os.environ.get("CI", "").lower() in ("true", "1")


def need_module(name: str) -> Any:
    """Import an optional dependency; skip the module's tests without it, but fail when :func:`in_ci`."""
    import importlib

    import pytest

    if in_ci():
        return importlib.import_module(name)  # an ImportError fails the collection, visibly
    return pytest.importorskip(name)


def missing_binaries(*names: str) -> list[str]:
    """The names among ``names`` that are not on ``PATH``."""
    return [name for name in names if shutil.which(name) is None]


def ask(port: int, request: bytes, timeout: float = 0.5) -> bytes:
    """Send ``request`` to ``HOST:port`` and return the first chunk of the answer (b"" on any error)."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(request)
            return sock.recv(65536)
    except OSError:
        return b""


class ServerProcess:
    """A server binary run as a child process on a fixed port; restartable on that port.

    ``argv(port)`` builds the command line; ``ready(port)`` says whether the server answers.
    The first :meth:`start` picks a free port (retrying on a collision); later starts reuse it.
    """

    #: memcached needs about a second to exit on SIGTERM; servers without persistence can be killed.
    stop_signal: signal.Signals = signal.SIGTERM

    def __init__(self, name: str, argv: Callable[[int], list[str]], ready: Callable[[int], bool],
                 workdir: Path, port: int | None = None) -> None:
        self.name = name
        self.host = HOST
        self._argv = argv
        self._ready = ready
        self.workdir = workdir
        self.port = port or 0
        self._proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def running(self) -> bool:
        """``True`` while the child process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def log_path(self) -> Path:
        """Where the server's stdout and stderr go."""
        return self.workdir / f"{self.name}.log"

    def start(self) -> None:
        """Start the server and wait until it answers; no-op when it is already running."""
        if self.running:
            return
        if self.port:
            self._spawn(self.port)
            return
        error: ServerError | None = None
        for _ in range(START_ATTEMPTS):  # another process may grab the port between pick and bind
            try:
                self._spawn(free_port())
                return
            except ServerError as exc:
                error = exc
        assert error is not None
        raise error

    def _spawn(self, port: int) -> None:
        with self.log_path.open("ab") as log:
            proc = subprocess.Popen(self._argv(port), stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=self.workdir)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ServerError(f"{self.name} exited with {proc.returncode}: {self._log_tail()}")
            if self._ready(port):
                self._proc = proc
                self.port = port
                _running.add(self)
                return
            time.sleep(0.02)
        _kill(proc)
        raise ServerError(f"{self.name} did not answer on port {port} within {START_TIMEOUT}s: "
                          f"{self._log_tail()}")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL); keeps the port for a later :meth:`start`."""
        if self._proc is not None:
            _kill(self._proc, self.stop_signal)
            self._proc = None
        _running.discard(self)

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return "<no log>"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.host}:{self.port} running={self.running}>"


def _kill(proc: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@atexit.register
def _stop_all() -> None:  # a crashed session must not leave servers behind
    for server in list(_running):
        server.stop()


# -- Redis ----------------------------------------------------------------------------------------
def _redis_ready(port: int) -> bool:
    return ask(port, b"PING\r\n").startswith(b"+PONG")


class RedisServer(ServerProcess):
    """One ``redis-server`` without persistence, bound to loopback."""

    def __init__(self, workdir: Path, extra_args: Sequence[str] = (), name: str = "redis",
                 port: int | None = None) -> None:
        self._extra = list(extra_args)
        super().__init__(name, self._command, _redis_ready, workdir, port)

    def _command(self, port: int) -> list[str]:
        return ["redis-server", "--save", "", "--appendonly", "no", "--bind", HOST,
                "--port", str(port), "--dir", str(self.workdir), *self._extra]

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://{self.host}:{self.port}/0"

    def client(self, **kwargs: object) -> redis.Redis:
        """A fresh ``redis.Redis`` on this server (database 0, bytes responses)."""
        import redis

        return redis.Redis(host=self.host, port=self.port, socket_timeout=5, **kwargs)  # type: ignore[arg-type]

    def flush(self) -> None:
        """Delete every key of every database."""
        assert ask(self.port, b"FLUSHALL\r\n", timeout=5).startswith(b"+OK"), f"FLUSHALL failed on {self}"


class _ClusterNode(RedisServer):
    """A cluster-enabled Redis; its bus port is picked like its port (PORT+10000 may exceed 65535)."""

    def _command(self, port: int) -> list[str]:
        conf = self.workdir / f"nodes-{port}.conf"
        return [*super()._command(port), "--cluster-enabled", "yes", "--cluster-config-file", str(conf),
                "--cluster-port", str(free_port()), "--cluster-node-timeout", "5000"]


class RedisCluster:
    """Three Redis primaries (no replicas) joined into one cluster covering all 16384 slots."""

    def __init__(self, workdir: Path, size: int = 3) -> None:
        self.workdir = workdir
        self.servers: list[RedisServer] = [
            _ClusterNode(workdir / f"node{i}", name=f"redis-cluster-{i}") for i in range(size)
        ]

    @property
    def nodes(self) -> list[tuple[str, int]]:
        """``(host, port)`` of every primary."""
        return [(s.host, s.port) for s in self.servers]

    @property
    def startup_nodes(self) -> list[str]:
        """``["127.0.0.1:PORT", ...]`` as a config's ``startup_nodes`` wants them."""
        return [f"{s.host}:{s.port}" for s in self.servers]

    def start(self) -> None:
        """Start the nodes, assign the slots and wait until every node says ``cluster_state:ok``."""
        for server in self.servers:
            server.start()
        result = subprocess.run(
            ["redis-cli", "--cluster", "create", *self.startup_nodes, "--cluster-replicas", "0",
             "--cluster-yes"], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise ServerError(f"redis-cli --cluster create failed: {result.stdout}{result.stderr}")
        deadline = time.monotonic() + 30
        while not all(b"cluster_state:ok" in ask(s.port, b"CLUSTER INFO\r\n") for s in self.servers):
            if time.monotonic() > deadline:
                raise ServerError("the cluster did not reach cluster_state:ok within 30s")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop every node."""
        for server in self.servers:
            server.stop()

    def client(self, **kwargs: object) -> redis.cluster.RedisCluster:
        """A fresh ``RedisCluster`` client (bytes responses)."""
        from redis.cluster import ClusterNode
        from redis.cluster import RedisCluster as Client

        nodes = [ClusterNode(host, port) for host, port in self.nodes]
        return Client(startup_nodes=nodes, socket_timeout=5, **kwargs)  # type: ignore[arg-type]

    def flush(self) -> None:
        """Delete every key on every primary."""
        for server in self.servers:
            server.flush()


class RedisSentinel:
    """One Redis primary watched by one ``redis-server --sentinel`` under ``service_name``."""

    def __init__(self, workdir: Path, service_name: str = "mymaster") -> None:
        self.service_name = service_name
        self.master = RedisServer(workdir / "master", name="redis-sentinel-master")
        self.sentinel = ServerProcess("redis-sentinel", self._command, _redis_ready, workdir / "sentinel")

    def _command(self, port: int) -> list[str]:
        conf = self.sentinel.workdir / "sentinel.conf"  # a sentinel rewrites its config: one file per run
        conf.write_text(f"port {port}\nbind {HOST}\ndir {self.sentinel.workdir}\n"
                        f"sentinel monitor {self.service_name} {HOST} {self.master.port} 1\n")
        return ["redis-server", str(conf), "--sentinel"]

    @property
    def sentinels(self) -> list[str]:
        """``["127.0.0.1:PORT"]`` as a config's ``sentinel`` wants them."""
        return [f"{self.sentinel.host}:{self.sentinel.port}"]

    def start(self) -> None:
        """Start the primary, then the sentinel watching it."""
        self.master.start()
        self.sentinel.start()

    def stop(self) -> None:
        """Stop the sentinel and the primary."""
        self.sentinel.stop()
        self.master.stop()


# -- memcached ------------------------------------------------------------------------------------
def _memcached_ready(port: int) -> bool:
    return ask(port, b"version\r\n").startswith(b"VERSION")


class MemcachedServer(ServerProcess):
    """One ``memcached`` bound to loopback, 64 MB, TCP only, ``threads`` worker threads (``-t``)."""

    stop_signal = signal.SIGKILL

    def __init__(self, workdir: Path, name: str = "memcached", port: int | None = None, threads: int = 2) -> None:
        self.threads = threads
        super().__init__(name, self._command, _memcached_ready, workdir, port)

    def _command(self, port: int) -> list[str]:
        argv = ["memcached", "-l", HOST, "-p", str(port), "-U", "0", "-m", "64", "-t", str(self.threads)]
        if os.geteuid() == 0:  # memcached refuses to run as root unless told which user to be
            argv += ["-u", "root"]
        return argv

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"{self.host}:{self.port}"

    def flush(self) -> None:
        """Invalidate every item."""
        assert ask(self.port, b"flush_all\r\n", timeout=5).startswith(b"OK"), f"flush_all failed on {self}"


class MemcachedPool:
    """Several independent memcached servers (a client spreads keys over them)."""

    def __init__(self, workdir: Path, size: int = 3) -> None:
        self.members = [MemcachedServer(workdir / f"mc{i}", name=f"memcached-{i}") for i in range(size)]

    @property
    def servers(self) -> list[str]:
        """``["127.0.0.1:PORT", ...]``."""
        return [m.address for m in self.members]

    def start(self) -> None:
        """Start every member."""
        for member in self.members:
            member.start()

    def stop(self) -> None:
        """Stop every member."""
        for member in self.members:
            member.stop()

    def flush(self) -> None:
        """Invalidate every item on every member (restarting any member a test stopped)."""
        for member in self.members:
            member.start()
            member.flush()
