"""A Django cache backend over a cachekit region.

.. code-block:: python

    # settings.py
    CACHES = {
        "default": {
            "BACKEND": "cachekit.contrib.django.CachekitCache",
            "OPTIONS": {"config": "cachekit.toml", "region": "default"},
        }
    }

The backend subclasses Django's ``BaseCache``, so ``TIMEOUT``, ``KEY_PREFIX``, ``VERSION``,
``KEY_FUNCTION``, ``make_key`` and ``validate_key`` (its ``CacheKeyWarning`` for keys memcached would
refuse) behave exactly as with Django's own backends. The key Django makes (``":1:views"`` by default)
is stored in the region as is, under the region's own namespace in a shared store.

``OPTIONS``:

- ``config``: path of a cachekit TOML file (default: cachekit's embedded default, an in-process memory
  store). The file is loaded once per process, whatever the number of aliases and threads using it,
  and its runtime is closed when the process exits.
- ``region``: the region the alias uses (default ``"default"``).
- ``runtime``: an existing :class:`~cachekit.Runtime` to use instead of ``config`` (tests, or to share
  the runtime the ``Cache`` facade or the decorators use); the caller closes it.

Timeouts follow Django: ``DEFAULT_TIMEOUT`` is the alias' ``TIMEOUT`` (default 300 s; the region's own
``ttl`` is not consulted), ``None`` means no expiry, zero or less means "do not cache" (``set`` removes
the key, ``add`` stores nothing and answers whether it would have added, ``touch`` expires the key).
"""

from __future__ import annotations

import asyncio
import atexit
import math
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import ProviderError, require

require("django", "django")

from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402

from .. import MISSING, Runtime, load  # noqa: E402
from ..runtime.policy import FOREVER  # noqa: E402

__all__ = ["CachekitCache", "get_runtime"]

_OPTIONS = ("config", "region", "runtime")
_EMBEDDED = "<cachekit default>"

_runtimes: dict[str, Runtime] = {}
_runtimes_lock = threading.Lock()
_close_registered = False


def get_runtime(config: str | os.PathLike[str] | None = None) -> Runtime:
    """The runtime the backend uses for ``config`` (a TOML path; ``None``: the embedded default).

    One runtime per file per process: every alias, thread and call naming the same file shares it
    (so does your own code calling this, to read ``runtime.stats`` or to give it to
    ``Cache.configure``). It is closed at interpreter exit; a runtime closed earlier is loaded again.
    """
    global _close_registered
    name = _EMBEDDED if config is None else str(Path(config).resolve())
    runtime = _runtimes.get(name)
    if runtime is not None and not runtime.closed:
        return runtime
    with _runtimes_lock:
        runtime = _runtimes.get(name)
        if runtime is None or runtime.closed:
            runtime = _runtimes[name] = load(None if config is None else name)
            if not _close_registered:
                atexit.register(_close_runtimes)
                _close_registered = True
    return runtime


def _close_runtimes() -> None:
    with _runtimes_lock:
        runtimes = list(_runtimes.values())
        _runtimes.clear()
    for runtime in runtimes:
        runtime.close()


class CachekitCache(BaseCache):
    """Django's cache API (``get set add get_or_set touch incr decr get_many set_many delete
    delete_many has_key clear incr_version decr_version close`` and their ``a*`` twins) over one
    cachekit region.

    ``self.runtime`` and ``self.region`` are the cachekit runtime and region behind the alias.
    """

    def __init__(self, location: str, params: dict[str, Any]) -> None:
        super().__init__(params)
        options = dict(params.get("OPTIONS") or {})
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            raise ImproperlyConfigured(
                f"CachekitCache: unknown OPTIONS {unknown}; known: {', '.join(_OPTIONS)} "
                "(limits such as max_size go in the cachekit TOML file)"
            )
        if location:
            raise ImproperlyConfigured(
                f"CachekitCache takes no LOCATION (got {location!r}): name the TOML file in OPTIONS['config']"
            )
        runtime = options.get("runtime")
        if runtime is not None and options.get("config") is not None:
            raise ImproperlyConfigured("CachekitCache: give OPTIONS 'config' or 'runtime', not both")
        if runtime is not None and not isinstance(runtime, Runtime):
            raise ImproperlyConfigured(
                f"CachekitCache: OPTIONS['runtime'] must be a cachekit Runtime, not {type(runtime).__name__}"
            )
        self.runtime: Runtime = runtime if runtime is not None else get_runtime(options.get("config"))
        self.region = self.runtime.region(options.get("region", "default"))

    # -- timeouts -------------------------------------------------------------------------
    def _lifetime(self, timeout: Any) -> Any:
        """Django's timeout as a region TTL: ``FOREVER``, or seconds (zero or less: expire now)."""
        if timeout is DEFAULT_TIMEOUT:
            timeout = self.default_timeout
        return FOREVER if timeout is None else timeout

    @staticmethod
    def _expired(ttl: Any) -> bool:
        return ttl is not FOREVER and ttl <= 0

    # -- reads ----------------------------------------------------------------------------
    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        return self.region.get(self.make_and_validate_key(key, version=version), default)

    def has_key(self, key: Any, version: int | None = None) -> bool:
        return self.region.has(self.make_and_validate_key(key, version=version))

    def get_many(self, keys: Iterable[Any], version: int | None = None) -> dict[Any, Any]:
        made = {self.make_and_validate_key(key, version=version): key for key in keys}
        if not made:
            return {}
        found = self.region.get_many(made, MISSING)
        return {made[k]: value for k, value in found.items() if value is not MISSING}

    # -- writes ---------------------------------------------------------------------------
    def set(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> None:
        key = self.make_and_validate_key(key, version=version)
        ttl = self._lifetime(timeout)
        if self._expired(ttl):
            self.region.forget(key)
        else:
            self.region.put(key, value, ttl)

    def add(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        return self._add(self.make_and_validate_key(key, version=version), value, timeout)

    def _add(self, key: str, value: Any, timeout: Any) -> bool:
        ttl = self._lifetime(timeout)
        if self._expired(ttl):
            return not self.region.has(key)  # it would have been added, and expired at once
        return self.region.add(key, value, ttl)

    def set_many(self, data: Mapping[Any, Any], timeout: Any = DEFAULT_TIMEOUT,
                 version: int | None = None) -> list[Any]:
        """Store every pair in one round trip where the store allows; returns the keys that may not
        have been stored (all of them when the store failed), ``[]`` on success."""
        made = {self.make_and_validate_key(key, version=version): (key, value) for key, value in data.items()}
        if not made:
            return []
        ttl = self._lifetime(timeout)
        if self._expired(ttl):
            self.region.forget_many(made)
            return []
        if self.region.put_many({k: value for k, (_, value) in made.items()}, ttl):
            return []
        return [key for key, _ in made.values()]

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        return self._touch(self.make_and_validate_key(key, version=version), timeout)

    def _touch(self, key: str, timeout: Any) -> bool:
        # the region has no native touch: read the entry and write it back with the new lifetime
        found = self.region.entry(key)
        if found is None:
            return False
        ttl = self._lifetime(timeout)
        if self._expired(ttl):
            self.region.forget(key)
            return True
        return self.region.put(key, found[0], ttl)

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> Any:
        return self._incr(self.make_and_validate_key(key, version=version), delta)

    def _incr(self, key: str, delta: Any) -> Any:
        found = self.region.entry(key)
        if found is None:
            raise ValueError(f"Key '{key}' not found")
        value, expires = found
        if type(value) is int and type(delta) is int:
            new = self.region.increment(key, delta)  # atomic; the entry keeps its expiry
            if new is None:
                raise ProviderError(f"incr of {key!r} failed: region {self.region.name!r} did not answer")
            return new
        new = value + delta  # Django's TypeError for None, a str...; floats and Decimals add up
        left = math.inf if expires == math.inf else expires - self.runtime.clock.now()
        if left <= 0:
            raise ValueError(f"Key '{key}' not found")
        self.region.put(key, new, FOREVER if left == math.inf else left)
        return new

    def delete(self, key: Any, version: int | None = None) -> bool:
        return self.region.forget(self.make_and_validate_key(key, version=version))

    def delete_many(self, keys: Iterable[Any], version: int | None = None) -> None:
        made = [self.make_and_validate_key(key, version=version) for key in keys]
        if made:
            self.region.forget_many(made)

    def clear(self) -> None:
        """Remove every entry of the region (other regions and foreign keys in the store stay)."""
        self.region.flush()

    def close(self, **kwargs: Any) -> None:
        """Nothing to do: the runtime is shared by every alias and thread, and closed at exit."""

    # -- async twins ----------------------------------------------------------------------
    # Native where the region has a twin (aget, aput, aforget, ahas, aget_many, aput_many, aflush);
    # the composite operations run their sync form in a worker thread, keys made and validated
    # (warnings raised) in the caller's task.
    async def aget(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        return await self.region.aget(self.make_and_validate_key(key, version=version), default)

    async def ahas_key(self, key: Any, version: int | None = None) -> bool:
        return await self.region.ahas(self.make_and_validate_key(key, version=version))

    async def aget_many(self, keys: Iterable[Any], version: int | None = None) -> dict[Any, Any]:
        made = {self.make_and_validate_key(key, version=version): key for key in keys}
        if not made:
            return {}
        found = await self.region.aget_many(made, MISSING)
        return {made[k]: value for k, value in found.items() if value is not MISSING}

    async def aset(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> None:
        key = self.make_and_validate_key(key, version=version)
        ttl = self._lifetime(timeout)
        if self._expired(ttl):
            await self.region.aforget(key)
        else:
            await self.region.aput(key, value, ttl)

    async def aadd(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        return await asyncio.to_thread(self._add, self.make_and_validate_key(key, version=version), value, timeout)

    async def aset_many(self, data: Mapping[Any, Any], timeout: Any = DEFAULT_TIMEOUT,
                        version: int | None = None) -> list[Any]:
        made = {self.make_and_validate_key(key, version=version): (key, value) for key, value in data.items()}
        if not made:
            return []
        ttl = self._lifetime(timeout)
        if self._expired(ttl):
            await asyncio.to_thread(self.region.forget_many, list(made))
            return []
        if await self.region.aput_many({k: value for k, (_, value) in made.items()}, ttl):
            return []
        return [key for key, _ in made.values()]

    async def atouch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        return await asyncio.to_thread(self._touch, self.make_and_validate_key(key, version=version), timeout)

    async def aincr(self, key: Any, delta: int = 1, version: int | None = None) -> Any:
        return await asyncio.to_thread(self._incr, self.make_and_validate_key(key, version=version), delta)

    async def adelete(self, key: Any, version: int | None = None) -> bool:
        return await self.region.aforget(self.make_and_validate_key(key, version=version))

    async def adelete_many(self, keys: Iterable[Any], version: int | None = None) -> None:
        made = [self.make_and_validate_key(key, version=version) for key in keys]
        if made:
            await asyncio.to_thread(self.region.forget_many, made)

    async def aclear(self) -> None:
        await self.region.aflush()

    async def aclose(self, **kwargs: Any) -> None:
        """Nothing to do (see :meth:`close`)."""

    def __repr__(self) -> str:
        return f"<CachekitCache region={self.region.name!r} runtime={self.runtime!r}>"
