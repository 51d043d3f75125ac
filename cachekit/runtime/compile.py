"""From a :class:`~cachekit.config.CacheConfig` to live parts, and again on hot-apply.

The :class:`Compiler` of a runtime resolves provider configs (declared, or the default of a
built-in type), caches the drivers of shared stores (one per provider, and connections with it),
builds the tiers and policies of regions, and on :meth:`Compiler.rebuild` re-binds a region to an
edited config. ``load()`` and ``compile_config()`` are the entry points: ``CacheConfig.compile()``
calls the latter, the one import from ``config`` up into the runtime.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping
from difflib import get_close_matches
from importlib import resources
from typing import TYPE_CHECKING, Any

from ..clock import Clock
from ..config.models import (
    BUILTIN_PROVIDER_TYPES,
    FileProviderConfig,
    MemcachedProviderConfig,
    MemoryProviderConfig,
    PatternBasedRule,
    RedisProviderConfig,
    RegionConfig,
    TimeBasedRule,
)
from ..errors import CacheError
from ..providers.base import CacheDriver
from ..providers.memory import MemoryDriver
from ..stats import Recorder
from .breaker import Breaker
from .bus import Bus
from .deadline import MARGIN
from .l1 import Gate
from .policy import Policy, compile_glob
from .region import Region, RegionParts
from .tier import LocalTier, SharedTier, Tier

if TYPE_CHECKING:
    from ..config.models import CacheConfig
    from .runtime import Runtime

__all__ = ["Compiler", "compile_config", "load"]

_DEFAULT_PROVIDER_CONFIGS: dict[str, Callable[[], Any]] = {
    "memory": MemoryProviderConfig,
    "file": FileProviderConfig,
    "redis": lambda: RedisProviderConfig(url="redis://localhost:6379/0"),
    "memcached": MemcachedProviderConfig,
}


def load(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    env_file: str | os.PathLike[str] | None = None,
    secrets_dir: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Runtime:
    """Read a TOML config, apply the environment, validate and compile it.

    ``path=None`` loads the embedded default (memory + file, no server needed). ``environ``,
    ``env_file``, ``secrets_dir`` and ``overrides`` are those of :func:`~cachekit.config.load_config`.
    Raises :class:`~cachekit.ConfigError` with file, dotted path and line for any problem.
    """
    from ..config.loader import load_config, parse_config

    sources: dict[str, Any] = {"environ": environ, "env_file": env_file, "secrets_dir": secrets_dir,
                               "overrides": overrides}
    if path is None:
        text = resources.files("cachekit").joinpath("default.toml").read_text(encoding="utf-8")
        config = parse_config(text, file="<cachekit default>", **sources)
    else:
        config = load_config(path, **sources)
    return config.compile(source=str(path) if path is not None else "<cachekit default>")


def compile_config(config: CacheConfig, *, clock: Clock | None = None, source: Any = None) -> Runtime:
    """``CacheConfig.compile()``: a live runtime for ``config``."""
    from .runtime import Runtime  # runtime.py imports this module: the one lazy import of the package

    return Runtime(config, clock=clock, source=source)


class Compiler:
    """The live parts of one runtime's config: provider configs, drivers, tiers, policies."""

    def __init__(self, config: CacheConfig, *, clock: Clock, fake: bool, origin: str) -> None:
        self.config = config
        self.clock = clock
        self.fake = fake
        self.origin = origin
        self._lock = threading.RLock()
        self._drivers: dict[str, CacheDriver] = {}
        #: the provider config each shared driver was built from (to rebuild it when edited live)
        self._driver_configs: dict[str, Any] = {}
        self._built_prefix = config.cache.prefix
        #: stores added with ``register_store``
        self.custom: dict[str, CacheDriver] = {}
        #: the circuit breaker of each provider that configures one (shared by its tiers)
        self.breakers: dict[str, Breaker] = {}

    @property
    def prefix(self) -> str:
        return self.config.cache.prefix

    # -- providers and drivers -------------------------------------------------------------
    def provider_config(self, name: str) -> Any:
        """The config of provider ``name``: declared, or the default of a built-in type."""
        declared = self.config.providers.get(name)
        if declared is not None:
            return declared
        if name in _DEFAULT_PROVIDER_CONFIGS:
            return _DEFAULT_PROVIDER_CONFIGS[name]()
        known = sorted({*self.config.providers, *BUILTIN_PROVIDER_TYPES, *self.custom})
        hint = get_close_matches(name, known, n=1)
        raise CacheError(f"unknown provider {name!r}; known: {', '.join(known)}"
                         + (f" (did you mean {hint[0]!r}?)" if hint else ""))

    def _driver_config(self, key: str) -> Any:
        """The effective config of driver ``key``: a provider name, or ``name\\0serializer`` for the
        regions that override their provider's serializer (they get a driver, and connections, of
        their own)."""
        name, _, serializer = key.partition("\0")
        cfg = self.provider_config(name)
        return cfg.model_copy(update={"serializer": serializer}) if serializer else cfg

    def shared_driver(self, name: str, serializer: str | None = None) -> CacheDriver:
        """The one driver (and connection pool) of provider ``name`` in this runtime."""
        key = name
        if serializer is not None and serializer != getattr(self.provider_config(name), "serializer", serializer):
            key = f"{name}\0{serializer}"
        driver = self._drivers.get(key)
        if driver is None:
            with self._lock:
                driver = self._drivers.get(key)
                if driver is None:
                    from ..providers.registry import build_driver

                    cfg = self._driver_config(key)
                    if self.fake:
                        driver = MemoryDriver(max_size=None, clock=self.clock)
                    else:
                        driver = build_driver(cfg, namespace=f"{self.prefix}:", clock=self.clock)
                    driver.name = name
                    self._drivers[key] = driver
                    self._driver_configs[key] = cfg.model_dump()
        return driver

    def register(self, name: str, driver: CacheDriver) -> None:
        with self._lock:
            driver.name = name
            self.custom[name] = driver

    def take_drivers(self) -> list[CacheDriver]:
        """Hand over every shared driver (to close them); none are left."""
        drivers = list(self._drivers.values())
        self._drivers.clear()
        return drivers

    def tier(self, provider: str, region: str, stats: Recorder, max_size: int | None,
             serializer: str | None = None, eviction: str | None = None) -> Tier:
        custom = self.custom.get(provider)
        if custom is not None:
            tier = SharedTier(custom, provider=provider, prefix=self.prefix, region=region, on_error="ignore",
                              stats=stats, now=self.clock.now)
            tier.budget = self.call_budget(None)
            return tier
        cfg = self.provider_config(provider)
        if cfg.type == "memory" or (self.fake and cfg.type in BUILTIN_PROVIDER_TYPES):
            size = max_size if max_size is not None else getattr(cfg, "max_size", None)
            driver = MemoryDriver(max_size=size, clock=self.clock, policy=eviction or getattr(cfg, "policy", "lru"))
            driver.name = provider
            return LocalTier(driver, provider=provider, on_error=cfg.on_error, stats=stats)
        tier = SharedTier(self.shared_driver(provider, serializer), provider=provider, prefix=self.prefix,
                          region=region, on_error=cfg.on_error, stats=stats, now=self.clock.now)
        tier.breaker = self.breaker(provider, cfg)
        tier.budget = self.call_budget(cfg)
        return tier

    def breaker(self, provider: str, cfg: Any) -> Breaker | None:
        """The one breaker of ``provider`` (``None`` without ``breaker``); a new one when its settings changed."""
        settings = getattr(cfg, "breaker", None)
        with self._lock:
            if settings is None:
                self.breakers.pop(provider, None)
                return None
            breaker = self.breakers.get(provider)
            if breaker is None or (breaker.threshold, breaker.cool_off) != (settings.failures, settings.cool_off):
                breaker = self.breakers[provider] = Breaker(provider, failures=settings.failures,
                                                            cool_off=settings.cool_off, now=self.clock.now)
            return breaker

    def call_budget(self, cfg: Any) -> float:
        """The store time one region call may spend on a tier: ``[cache] call_timeout``, or the
        provider's operation timeout plus a margin (one second for a store without one)."""
        if self.config.cache.call_timeout is not None:
            return float(self.config.cache.call_timeout)
        timeout = getattr(cfg, "socket_timeout", None) or getattr(cfg, "timeout", None) or 1.0
        return float(timeout) + MARGIN

    # -- regions ---------------------------------------------------------------------------
    def region_config(self, name: str) -> RegionConfig:
        rc = self.config.regions.get(name)
        if rc is not None:
            return rc
        cache = self.config.cache
        if cache.strict:
            known = sorted(self.config.regions)
            hint = get_close_matches(name, known, n=1)
            raise CacheError(f"unknown region {name!r} ([cache].strict = true); known: {', '.join(known)}"
                             + (f" (did you mean {hint[0]!r}?)" if hint else ""))
        return self.config.regions.get(cache.default_region) or RegionConfig()

    def policy(self, name: str, provider: str | None = None) -> Policy:
        cfg = self.config
        rc = self.region_config(name)
        ttl = rc.ttl if rc.ttl is not None else (None if rc.forever else cfg.cache.default_ttl)
        applies = [r for r in cfg.rules if r.enabled and (not r.regions or name in r.regions)]
        l1 = rc.l1 if (rc.l1 is not None and cfg.cache.multi_level) else None
        return Policy(
            name=name,
            provider=provider or rc.provider or cfg.cache.default_provider,
            ttl=ttl,
            max_size=rc.max_size,
            max_key_length=cfg.cache.max_key_length,
            enabled=cfg.cache.enabled and rc.enabled,
            stale_ttl=rc.stale_ttl,
            lock=rc.lock,
            lock_timeout=rc.lock_timeout,
            serializer=rc.serializer,
            flush=rc.flush,
            l1_provider=l1.provider if l1 else None,
            l1_ttl=l1.ttl if l1 else None,
            l1_max_size=l1.max_size if l1 else None,
            l1_eviction=l1.policy if l1 else None,
            ttl_rules=[(compile_glob(r.pattern), r.ttl) for r in applies if isinstance(r, TimeBasedRule)],
            pattern_rules=[(compile_glob(r.pattern), r.name) for r in applies if isinstance(r, PatternBasedRule)],
        )

    def build(self, label: str, policy: Policy, parts: RegionParts, existing: Region | None = None,
              rebuilt: frozenset[str] = frozenset()) -> Region:
        """A region for ``policy`` (``label``: its stats row), or ``existing`` re-bound to it.

        A tier survives a hot-apply when its provider, its serializer and (for a shared store) the
        provider's config and the prefix are unchanged: its data stays; an in-process one only
        takes the new ``max_size``. Otherwise the region gets a new, empty tier.
        """
        stats = existing.stats if existing is not None else Recorder(label, policy.provider)
        stats.provider = policy.provider
        stats.timing = self.config.cache.stats
        if existing is not None and existing.l2.provider == policy.provider and policy.provider not in rebuilt \
                and existing.policy.serializer == policy.serializer:
            l2 = existing.l2
            if isinstance(l2, LocalTier):  # a shared store's bound is the server's, not the region's
                l2.resize(policy.max_size if policy.max_size is not None else
                          getattr(self.provider_config(policy.provider), "max_size", None))
        else:
            l2 = self.tier(policy.provider, policy.name, stats, policy.max_size, policy.serializer)
            if existing is not None and isinstance(existing.l2, SharedTier) and isinstance(l2, SharedTier):
                # an edited provider may still be the same server: invalidations it missed during an
                # outage are still owed to it, replayed when it first answers (as after any outage)
                l2.pending |= existing.l2.pending
                l2.down = existing.l2.down or bool(l2.pending)
        l1 = None
        if policy.l1_provider is not None:
            if existing is not None and existing.l1 is not None and policy.l1_provider not in rebuilt:
                l1 = existing.l1
            else:
                l1 = self.tier(policy.l1_provider, policy.name, stats, policy.l1_max_size,
                               eviction=policy.l1_eviction)
                if not isinstance(l1, LocalTier):
                    raise CacheError(f"region {policy.name!r}: L1 provider {policy.l1_provider!r} "
                                     "must be an in-process memory provider")
        if l1 is not None and not self.fake and self._bus_wanted(l2):
            parts.broadcast.start(self._make_bus)
        if existing is not None:
            existing.configure(policy, l2, l1)
            return existing
        return Region(policy, l2, l1, parts)

    # -- the bus ---------------------------------------------------------------------------
    def _bus_wanted(self, l2: Tier) -> bool:
        """``[bus] enabled``, or when unset: this L1 sits over a shared store and a Redis can carry the bus."""
        bus = self.config.bus
        if bus.enabled is not None:
            return bus.enabled
        return isinstance(l2, SharedTier) and (bus.provider is not None
                                               or any(p.type == "redis" for p in self.config.providers.values()))

    def _make_bus(self, on_message: Callable[[dict[str, Any]], None], on_reconnect: Callable[[], None],
                  gate: Gate) -> Bus:
        # [bus].provider, else the first redis provider declared: never the Redis of whichever
        # region this process happened to build first, or two processes could pick two servers
        name = self.config.bus.provider
        if name is None:
            name = next((n for n, p in self.config.providers.items() if p.type == "redis"), None)
        if name is None:
            raise CacheError("[bus] is enabled but no redis provider is declared to carry it")
        driver = self.shared_driver(name)
        channel = f"{self.config.bus.channel}:{self.prefix}"
        return Bus(driver.client, channel, self.origin,  # type: ignore[attr-defined]
                   on_message=on_message, on_reconnect=on_reconnect,
                   heartbeat=self.config.bus.heartbeat, gate=gate)

    # -- hot-apply -------------------------------------------------------------------------
    def drop_changed_drivers(self, regions: Iterable[Region]) -> frozenset[str]:
        """Close the drivers whose provider config was edited (or whose namespace moved); the
        providers named in the result get new tiers."""
        prefix_moved = self.prefix != self._built_prefix
        self._built_prefix = self.prefix
        changed = set()
        for key, built_from in list(self._driver_configs.items()):
            try:
                now = self._driver_config(key).model_dump()
            except CacheError:
                now = None
            if now != built_from or prefix_moved:
                changed.add(key.partition("\0")[0])
                driver = self._drivers.pop(key)
                del self._driver_configs[key]
                try:
                    driver.close()
                except Exception:  # a broken old connection must not block the new config
                    pass
        if prefix_moved:  # every namespace changes: every tier is rebuilt
            for r in regions:
                changed.add(r.l2.provider)
                if r.l1 is not None:
                    changed.add(r.l1.provider)
        return frozenset(changed)

    def names_registered_store(self, problem: Any) -> bool:
        """A region naming a store added with ``register_store`` is valid at run time."""
        parts = problem.path.split(".")
        if len(parts) == 3 and parts[0] == "regions" and parts[2] == "provider":
            rc = self.config.regions.get(parts[1])
            return rc is not None and rc.provider in self.custom
        return False
