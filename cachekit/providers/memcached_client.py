"""The pymemcache clients of the memcached driver, and per-call socket timeouts.

One server gets a pooled client, several a hashing client with a pool per server; both build their
connections as :class:`BoundedClient`, a pymemcache ``Client`` whose commands run with the socket and
connect timeouts shortened to what is left of the current region call's budget
(:func:`~cachekit.providers.base.time_left`, kept by ``runtime/deadline.py``). A store call that starts
with 0.05 s of the call's budget left waits 0.05 s for its answer, not the whole ``timeout``; so a
region call on a slow or cut store ends within its deadline, as a Redis one does. Outside a region
call, or with more than ``timeout`` left, a command runs as pymemcache runs it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..errors import require
from .base import time_left

__all__ = ["BoundedClient", "build_client"]

_base: Any = require("pymemcache.client.base", "memcached")
_hash: Any = require("pymemcache.client.hash", "memcached")

#: the shortest timeout a command is given (a budget nearly spent still gets one answer's worth)
_FLOOR = 0.005


class BoundedClient(_base.Client):  # type: ignore[misc]
    """A pymemcache ``Client`` whose commands wait no longer than the current region call's deadline.

    pymemcache sends every command through ``_fetch_cmd``, ``_store_cmd`` or ``_misc_cmd`` on
    ``self.sock``; a pooled client serves one thread at a time, so setting its timeouts around one
    command is safe. A connection made inside the command (the first, or after a cut) connects with
    the shortened ``connect_timeout`` too.
    """

    def _bounded(self, command: Callable[..., Any], args: Any, kwargs: Any) -> Any:
        left = time_left()
        timeout = self.timeout
        if left is None or timeout is None or left >= timeout:
            return command(*args, **kwargs)
        left = max(left, _FLOOR)
        connect_timeout = self.connect_timeout
        self.timeout = left
        self.connect_timeout = left if connect_timeout is None else min(connect_timeout, left)
        sock = self.sock
        if sock is not None:
            sock.settimeout(left)
        try:
            return command(*args, **kwargs)
        finally:
            self.timeout = timeout
            self.connect_timeout = connect_timeout
            sock = self.sock  # None if the command failed (pymemcache closes it), or a new one
            if sock is not None:
                sock.settimeout(timeout)

    def _fetch_cmd(self, *args: Any, **kwargs: Any) -> Any:
        return self._bounded(super()._fetch_cmd, args, kwargs)

    def _store_cmd(self, *args: Any, **kwargs: Any) -> Any:
        return self._bounded(super()._store_cmd, args, kwargs)

    def _misc_cmd(self, *args: Any, **kwargs: Any) -> Any:
        return self._bounded(super()._misc_cmd, args, kwargs)


class _PooledClient(_base.PooledClient):  # type: ignore[misc]
    client_class = BoundedClient


class _NoFailoverHashClient(_hash.HashClient):  # type: ignore[misc]
    """``HashClient`` without its failover: every error reaches the caller and no server leaves the ring.

    The stock client answers a default (a miss, a failed set) without an error while a server is in
    its retry window, then remaps the server's keys to the others; the failure bookkeeping is also
    not thread-safe. The driver wants errors it can report and keys that stay where they hash.
    """

    client_class = BoundedClient

    def _safely_run_func(self, client: Any, func: Callable[..., Any], default_val: Any,
                         *args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    def _safely_run_set_many(self, client: Any, values: Any, *args: Any, **kwargs: Any) -> Any:
        return client.set_many(values, *args, **kwargs)


def build_client(servers: Iterable[str], **options: Any) -> Any:
    """A pooled client for one server, a hashing client with a pool per server for several."""
    servers = list(servers)
    if len(servers) == 1:
        return _PooledClient(_base.normalize_server_spec(servers[0]), **options)
    return _NoFailoverHashClient(servers, use_pooling=True, **options)
