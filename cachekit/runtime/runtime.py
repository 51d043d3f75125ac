"""The live runtime compiled from a :class:`~cachekit.config.CacheConfig`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..clock import Clock, FakeClock, SystemClock
from ..config.models import (
    BUILTIN_PROVIDER_TYPES,
    EventBasedRule,
    FileProviderConfig,
    MemcachedProviderConfig,
    MemoryProviderConfig,
    PatternBasedRule,
    RedisProviderConfig,
    RegionConfig,
    TimeBasedRule,
    region_name_problem,
)
from ..errors import CacheError, UnsupportedOperation
from ..providers.base import CacheDriver
from ..providers.memory import MemoryDriver
from ..stats import RegionStats, Stats
from .policy import Policy, compile_glob, escape_glob, has_glob
from .region import Region
from .singleflight import SingleFlight
from .tier import Tier

if TYPE_CHECKING:
    from ..config.models import CacheConfig

__all__ = ["InvalidationResult", "Runtime"]

def _no_release() -> None:
    pass


_PLACEHOLDER = re.compile(r"\{[^{}]*\}")  # a parameter of an event rule's key template: {user_id}

_DEFAULT_PROVIDER_CONFIGS: dict[str, Callable[[], Any]] = {
    "memory": MemoryProviderConfig,
    "file": FileProviderConfig,
    "redis": lambda: RedisProviderConfig(url="redis://localhost:6379/0"),
    "memcached": MemcachedProviderConfig,
}


@dataclass
class InvalidationResult:
    """What an invalidation removed (or, with ``dry_run``, would remove)."""

    keys: dict[str, list[str]] = field(default_factory=dict)
    """region -> keys deleted (stores that can enumerate)"""
    generations: dict[str, list[str]] = field(default_factory=dict)
    """region -> generations advanced ("tag:users", "rule:user-data", "region")"""
    dry_run: bool = False

    @property
    def count(self) -> int:
        return sum(map(len, self.keys.values())) + sum(map(len, self.generations.values()))

    def __bool__(self) -> bool:
        return self.count > 0


class Runtime:
    """Regions, stores, invalidation and stats compiled from one config.

    >>> from cachekit import CacheConfig
    >>> rt = CacheConfig(regions={"users": {"ttl": 60}}).compile()
    >>> rt.region("users").put("user:1", {"name": "Ada"})
    True
    >>> rt.region("users").get("user:1")
    {'name': 'Ada'}
    >>> rt.close()
    """

    def __init__(self, config: CacheConfig, *, clock: Clock | None = None, source: Any = None,
                 fake: bool = False) -> None:
        from ..config.checks import validate_config

        problems = validate_config(config)
        if problems:
            from ..errors import ConfigError

            raise ConfigError(problems, file=getattr(config, "source_path", None))
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.fake = fake
        self.singleflight = SingleFlight()
        self.source = source
        self.id = uuid.uuid4().hex
        self._lock = threading.RLock()
        self._drivers: dict[str, CacheDriver] = {}
        #: the provider config each shared driver was built from (to rebuild it when edited live)
        self._driver_configs: dict[str, Any] = {}
        self._built_prefix = config.cache.prefix
        self._custom: dict[str, CacheDriver] = {}
        #: declared regions and the default one: never dropped
        self._regions: dict[str, Region] = {}
        #: regions used in code but not declared, least recently used first, at most
        #: ``[cache].max_adhoc_regions``; a dropped one is rebuilt on next use (or taken back from
        #: ``_evicted`` while something, a decorator say, still holds it: one Region per name)
        self._adhoc: OrderedDict[str, Region] = OrderedDict()
        self._evicted: weakref.WeakValueDictionary[str, Region] = weakref.WeakValueDictionary()
        #: the counters of dropped ad-hoc regions, folded together so that totals never go down
        self._evicted_stats = RegionStats(EVICTED_STATS_ROW, "")
        self._stores: dict[str, Region] = {}
        self._default_store: str | None = None
        #: the repository plain facade calls use; resolved once, reset when the default changes
        self.default_repository: Region | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._listeners: list[Callable[[str, str, Any], None]] = []
        self.closed = False
        self.bus: Any = None
        self.stats = Stats(self._stat_sources, clock=self.clock.now, on_reset=self._reset_driver_counters)

    # -- construction ---------------------------------------------------------------------
    @property
    def prefix(self) -> str:
        return self.config.cache.prefix

    def provider_config(self, name: str) -> Any:
        """The config of provider ``name``: declared, or the default of a built-in type."""
        declared = self.config.providers.get(name)
        if declared is not None:
            return declared
        if name in _DEFAULT_PROVIDER_CONFIGS:
            return _DEFAULT_PROVIDER_CONFIGS[name]()
        known = sorted({*self.config.providers, *BUILTIN_PROVIDER_TYPES, *self._custom})
        hint = get_close_matches(name, known, n=1)
        raise CacheError(f"unknown provider {name!r}; known: {', '.join(known)}"
                         + (f" (did you mean {hint[0]!r}?)" if hint else ""))

    def _driver_config(self, key: str) -> Any:
        """The effective config of driver ``key``: a provider name, or ``name\0serializer`` for the
        regions that override their provider's serializer (they get a driver, and connections, of
        their own)."""
        name, _, serializer = key.partition("\0")
        cfg = self.provider_config(name)
        return cfg.model_copy(update={"serializer": serializer}) if serializer else cfg

    def _shared_driver(self, name: str, serializer: str | None = None) -> CacheDriver:
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

    def _tier(self, provider: str, region: str, stats: RegionStats, max_size: int | None,
              serializer: str | None = None, eviction: str | None = None) -> Tier:
        namespace = f"{self.prefix}:{region}:"
        custom = self._custom.get(provider)
        if custom is not None:
            return Tier(custom, provider=provider, namespace=namespace, private=False,
                        on_error="ignore", stats=stats)
        cfg = self.provider_config(provider)
        if cfg.type == "memory" or (self.fake and cfg.type in BUILTIN_PROVIDER_TYPES):
            size = max_size if max_size is not None else getattr(cfg, "max_size", None)
            driver = MemoryDriver(max_size=size, clock=self.clock,
                                  policy=eviction or getattr(cfg, "policy", "lru"))
            driver.name = provider
            return Tier(driver, provider=provider, namespace=namespace, private=True,
                        on_error=cfg.on_error, stats=stats)
        return Tier(self._shared_driver(provider, serializer), provider=provider, namespace=namespace,
                    private=False, on_error=cfg.on_error, stats=stats)

    def _region_config(self, name: str) -> RegionConfig:
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

    def _policy(self, name: str, provider: str | None = None) -> Policy:
        cfg = self.config
        rc = self._region_config(name)
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

    def _build(self, label: str, policy: Policy, existing: Region | None = None,
               rebuilt: frozenset[str] = frozenset()) -> Region:
        stats = existing.stats if existing is not None else RegionStats(label, policy.provider)
        stats.provider = policy.provider
        if existing is not None and existing.l2.provider == policy.provider and policy.provider not in rebuilt \
                and existing.policy.serializer == policy.serializer:
            l2 = existing.l2
            if l2.private and isinstance(l2.driver, MemoryDriver):
                size = policy.max_size if policy.max_size is not None else \
                    getattr(self.provider_config(policy.provider), "max_size", None)
                l2.driver.max_size = size
                l2.driver._half = size // 2 if size else None
        else:
            l2 = self._tier(policy.provider, policy.name, stats, policy.max_size, policy.serializer)
        l1 = None
        if policy.l1_provider is not None:
            if existing is not None and existing.l1 is not None and policy.l1_provider not in rebuilt:
                l1 = existing.l1
            else:
                l1 = self._tier(policy.l1_provider, policy.name, stats, policy.l1_max_size,
                                eviction=policy.l1_eviction)
                if not l1.private:
                    raise CacheError(f"region {policy.name!r}: L1 provider {policy.l1_provider!r} "
                                     "must be an in-process memory provider")
        if l1 is not None and not self.fake and self._bus_wanted(l2):
            self._ensure_bus(l2)
        if existing is not None:
            existing._gen_prefix = f"{self.prefix}:__gen__:{policy.name}:"
            existing.configure(policy, l2, l1)
            return existing
        return Region(self, policy, l2, l1, gen_prefix=f"{self.prefix}:__gen__:{policy.name}:")

    # -- public API -----------------------------------------------------------------------
    def region(self, name: str | None = None) -> Region:
        """The repository of region ``name`` (default: ``[cache].default_region``).

        A name not declared in the config gets the default region's policy under its own
        namespace, unless ``[cache].strict`` is set.
        """
        if name is None:
            repo = self.default_repository
            if repo is not None:
                return repo
            if self._default_store is not None:
                return self.store(self._default_store)
            name = self.config.cache.default_region
        region = self._regions.get(name)
        if region is None:
            adhoc = self._adhoc
            region = adhoc.get(name)
            if region is not None:
                try:
                    adhoc.move_to_end(name)
                except KeyError:  # dropped by another thread meanwhile: still a valid region
                    pass
                return region
            self._check_open()
            with self._lock:
                region = self._regions.get(name) or adhoc.get(name)
                if region is None:
                    bad_name = region_name_problem(name)
                    if bad_name:
                        raise CacheError(f"invalid region name: {bad_name}")
                    if name in self.config.regions or name == self.config.cache.default_region:
                        region = self._regions[name] = self._build(name, self._policy(name))
                    else:
                        region = self._adhoc_region(name)
        return region

    def _adhoc_region(self, name: str) -> Region:
        """Build (or take back) the ad-hoc region ``name``, dropping the least recently used ones past
        ``[cache].max_adhoc_regions``. Called under the lock."""
        region = self._evicted.pop(name, None)
        if region is None:
            region = self._build(name, self._policy(name))
            # once dropped and no longer referenced, its counters go to the "evicted" row
            weakref.finalize(region, _fold_stats, region.stats, self._evicted_stats).atexit = False
        adhoc = self._adhoc
        adhoc[name] = region
        while len(adhoc) > self.config.cache.max_adhoc_regions:
            old_name, old = adhoc.popitem(last=False)
            self._evicted[old_name] = old
        return region

    def store(self, name: str | None = None) -> Region:
        """The default region's policy on provider ``name`` (``"memory"``, ``"redis"``, a custom store...)."""
        if name is None:
            return self.region()
        default = self.config.cache.default_region
        region = self._stores.get(name)
        if region is None:
            self._check_open()
            base = self.region(default) if self._default_store is None else self._regions.get(default)
            if base is not None and base.provider == name:
                return base
            with self._lock:
                region = self._stores.get(name)
                if region is None:
                    if name not in self._custom:
                        self.provider_config(name)  # unknown names fail here, with suggestions
                    region = self._stores[name] = self._build(f"{default}@{name}", self._policy(default, name))
        return region

    def register_store(self, name: str, driver: CacheDriver) -> None:
        """Make ``driver`` available as ``store(name)`` and as a provider name for regions."""
        if not isinstance(driver, CacheDriver):
            raise CacheError(f"register_store needs a CacheDriver instance, not {type(driver).__name__}")
        with self._lock:
            driver.name = name
            self._custom[name] = driver
            self._stores.pop(name, None)

    def set_default_store(self, name: str) -> None:
        """Make ``store(name)`` what the facade's plain calls (``Cache.put``...) use."""
        self.store(name)
        self._default_store = name
        self.default_repository = None

    def resolve_default(self) -> Region:
        """The repository of plain facade calls (cached in ``default_repository``)."""
        repo = self.store(self._default_store) if self._default_store is not None else \
            self.region(self.config.cache.default_region)
        self.default_repository = repo
        return repo

    @property
    def default_store(self) -> str:
        return self._default_store or self.region().provider

    def regions(self) -> dict[str, Region]:
        """Every region instantiated so far plus every declared one."""
        for name in self.config.regions:
            self.region(name)
        return {**self._regions, **self._adhoc}

    def _all_regions(self) -> Iterator[Region]:
        yield from list(self._regions.values())
        yield from list(self._adhoc.values())
        yield from list(self._evicted.values())  # dropped, but still held (and used) by someone
        yield from list(self._stores.values())

    # -- invalidation ---------------------------------------------------------------------
    def _targets(self, region: str | Iterable[str] | None) -> list[Region]:
        if region is None:
            self.regions()
            return list(self._all_regions())
        names = [region] if isinstance(region, str) else list(region)
        targets = [self.region(n) for n in names]
        # store views (Cache.store('redis')) of a region share its name and namespace
        targets += [s for s in self._stores.values() if s.name in names and s not in targets]
        return targets

    def invalidate(self, pattern: str | None = None, tags: Iterable[str] | None = None,
                   region: str | Iterable[str] | None = None, *, dry_run: bool = False) -> InvalidationResult:
        """Invalidate by key pattern, tags and/or whole regions.

        - ``tags``: entries carrying any of them (O(1) per tag, via generations).
        - ``pattern``: a declared ``pattern_based`` rule's pattern advances its generation (O(1) on
          every store); any other glob is scanned and deleted on stores that can enumerate keys
          (memory, file, redis) and raises :class:`UnsupportedOperation` on memcached; a pattern
          without wildcards is a single key.
        - only ``region``: flush those regions; no argument at all: flush every region.
        - ``tags=[]`` (say, a computed list that came out empty) invalidates nothing.

        With ``dry_run=True`` nothing changes and the result says what would have been removed.
        """
        return self._invalidate(pattern, tags, region, dry_run=dry_run)

    def _invalidate(self, pattern: str | None, tags: Iterable[str] | None, region: str | Iterable[str] | None,
                    *, dry_run: bool = False, literal: bool = False) -> InvalidationResult:
        """:meth:`invalidate`; ``literal``: ``pattern`` is one key even if it holds glob characters."""
        result = InvalidationResult(dry_run=dry_run)
        if tags is not None and not isinstance(tags, str):
            tags = list(tags)
            if not tags and pattern is None:  # an empty (computed) tag list invalidates nothing,
                return result                 # it must never fall through to "flush the regions"
        targets = self._targets(region)
        if pattern is not None and not literal:
            self._check_listable(pattern, targets)  # before any change: all or nothing
        tags = [tags] if isinstance(tags, str) else list(tags or [])
        for r in targets:
            if tags:
                result.generations.setdefault(r.name, []).extend(f"tag:{t}" for t in tags)
                if not dry_run:
                    r.bump("tag", tags)
            if pattern is not None:
                self._invalidate_pattern(r, pattern, result, dry_run, literal)
            if pattern is None and not tags:
                if r._region_gen is not None:
                    result.generations.setdefault(r.name, []).append("region")
                else:
                    result.keys.setdefault(r.name, []).extend(self._keys_or_empty(r, "*"))
                if not dry_run:
                    r.flush()
        if not dry_run:
            self._notify("invalidate", "", {"pattern": pattern, "tags": tags,
                                            "regions": [r.name for r in targets]})
        return result

    @staticmethod
    def _keys_or_empty(r: Region, pattern: str) -> list[str]:
        try:
            return r.keys(pattern)
        except UnsupportedOperation:
            return []

    def _declared(self, r: Region, pattern: str) -> list[str]:
        """The ``pattern_based`` rules of region ``r`` whose pattern is exactly ``pattern``."""
        return [name for regex, name in r.policy.pattern_rules
                if any(rule.name == name and rule.pattern == pattern
                       for rule in self.config.rules if isinstance(rule, PatternBasedRule))]

    def _check_listable(self, pattern: str, targets: list[Region]) -> None:
        """Raise if an ad-hoc glob would have to list the keys of a store that cannot."""
        if not has_glob(pattern):
            return
        for r in targets:
            if not r.l2.private and not r.l2.driver.can_scan and not self._declared(r, pattern):
                raise UnsupportedOperation(
                    f"region {r.name!r} is on {r.provider!r}, which cannot enumerate keys for pattern "
                    f"{pattern!r}; declare it as a rule (strategy = \"pattern_based\", pattern = {pattern!r}) "
                    "to invalidate it by generation, or pass region= to leave that region out; nothing "
                    "was invalidated"
                )

    def _invalidate_pattern(self, r: Region, pattern: str, result: InvalidationResult, dry_run: bool,
                            literal: bool = False) -> None:
        declared = self._declared(r, pattern)
        if declared:
            result.generations.setdefault(r.name, []).extend(f"rule:{n}" for n in declared)
            if not dry_run:
                r.bump("rule", declared)
            return
        if literal or not has_glob(pattern):
            if dry_run:
                if r.has(pattern):
                    result.keys.setdefault(r.name, []).append(pattern)
            elif r.forget(pattern):
                result.keys.setdefault(r.name, []).append(pattern)
            return
        keys = r.keys(pattern)  # listable: _check_listable ran first
        result.keys.setdefault(r.name, []).extend(keys)
        if not dry_run and keys:
            r.forget_many(keys)

    def emit(self, event: str, /, **params: Any) -> InvalidationResult:
        """Fire ``event``: every enabled ``event_based`` rule listing it invalidates its patterns
        (templates filled from ``params``: ``user:{user_id}``), tags and, if set, regions."""
        # Fill every template before invalidating anything: a missing parameter changes nothing.
        # Parameter values are literal (user_id="*" names the key "user:*", not every user): a template
        # without wildcards of its own names one key; in a glob template, the values are escaped.
        escaped = {k: escape_glob(v) if isinstance(v, str) else v for k, v in params.items()}
        plan = []
        for rule in self.config.rules:
            if not (isinstance(rule, EventBasedRule) and rule.enabled and event in rule.events):
                continue
            patterns = []
            for template in rule.all_patterns():
                literal = not has_glob(_PLACEHOLDER.sub("", template))
                patterns.append((self._fill(event, rule.name, "pattern", template, params if literal else escaped),
                                 literal))
            tags = [self._fill(event, rule.name, "tag", t, params) for t in rule.tags]
            for pattern, literal in patterns:
                if not literal:
                    self._check_listable(pattern, self._targets(rule.regions or None))
            plan.append((rule.regions or None, patterns, tags, rule.flush_regions))
        total = InvalidationResult()
        for regions, patterns, tags, flush in plan:
            for pattern, literal in patterns:
                self._merge(total, self._invalidate(pattern, None, regions, literal=literal))
            if tags:
                self._merge(total, self.invalidate(tags=tags, region=regions))
            if flush:
                self._merge(total, self.invalidate(region=regions))
        self._notify("event", event, params)
        if self.bus is not None:  # the subscribe() listeners of the other processes (a failure: bus.errors)
            self.bus.publish("", "event", None, e=event, p=params)
        return total

    @staticmethod
    def _fill(event: str, rule: str, what: str, template: str, params: dict[str, Any]) -> str:
        try:
            return template.format(**params)
        except (KeyError, IndexError) as exc:
            raise CacheError(f"event {event!r}: rule {rule!r} {what} {template!r} needs parameter "
                             f"{exc.args[0]!r}; got {sorted(params) or 'none'}") from None

    @staticmethod
    def _merge(into: InvalidationResult, other: InvalidationResult) -> None:
        for name, keys in other.keys.items():
            into.keys.setdefault(name, []).extend(keys)
        for name, gens in other.generations.items():
            into.generations.setdefault(name, []).extend(gens)

    def find_matching_rules(self, key: str, region: str | None = None) -> list[Any]:
        """Enabled rules whose pattern (or pattern template, wildcards for parameters) matches ``key``."""
        out = []
        for rule in self.config.rules:
            if not rule.enabled:
                continue
            if region is not None and rule.regions and region not in rule.regions:
                continue
            patterns = rule.all_patterns() if isinstance(rule, EventBasedRule) else [rule.pattern]
            for p in patterns:
                glob = _PLACEHOLDER.sub("*", p)
                if compile_glob(glob).match(key):
                    out.append(rule)
                    break
        return out

    # -- listeners / bus hooks ------------------------------------------------------------
    def subscribe(self, listener: Callable[[str, str, Any], None]) -> Callable[[], None]:
        """Call ``listener(kind, name, payload)`` on invalidations and events; returns an unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _notify(self, kind: str, name: str, payload: Any) -> None:
        for listener in list(self._listeners):
            listener(kind, name, payload)

    def _published(self, region: Region, kind: str, key: Any) -> None:
        """An L1-relevant change happened in ``region``: tell the other processes' L1s."""
        bus = self.bus
        if bus is not None:
            keys = None if key is None else (list(key) if isinstance(key, list) else [key])
            if not bus.publish(region.name, kind, keys):
                region.stats.errors += 1

    def _bus_wanted(self, l2: Tier) -> bool:
        """``[bus] enabled``, or when unset: this L1 sits over a shared store and a Redis can carry the bus."""
        bus = self.config.bus
        if bus.enabled is not None:
            return bus.enabled
        return not l2.private and (bus.provider is not None
                                   or any(p.type == "redis" for p in self.config.providers.values()))

    def _ensure_bus(self, l2: Tier) -> None:
        if self.bus is not None:
            return
        with self._lock:
            if self.bus is not None:
                return
            from .bus import Bus

            # [bus].provider, else the first redis provider declared: never the Redis of whichever
            # region this process happened to build first, or two processes could pick two servers
            name = self.config.bus.provider
            if name is None:
                name = next((n for n, p in self.config.providers.items() if p.type == "redis"), None)
            if name is None:
                raise CacheError("[bus] is enabled but no redis provider is declared to carry it")
            driver = self._shared_driver(name)
            channel = f"{self.config.bus.channel}:{self.prefix}"
            self.bus = Bus(driver.client, channel, self.id,  # type: ignore[attr-defined]
                           on_message=self._on_bus_message, on_reconnect=self._clear_all_l1)

    def _on_bus_message(self, payload: dict[str, Any]) -> None:
        if payload.get("k") == "event":  # another process emitted: its listeners here hear it too
            try:
                self._notify("event", str(payload.get("e")), payload.get("p") or {})
            except Exception:  # a listener's bug must not stop the bus thread
                logging.getLogger("cachekit").exception("cachekit: a subscribe() listener failed on a bus event")
            return
        name = payload.get("r")
        for region in self._all_regions():
            if region.name == name:
                region._l1_drop(None if payload.get("k") == "clear" else (payload.get("keys") or ()))

    def _clear_all_l1(self) -> None:
        for region in self._all_regions():
            region._l1_drop(None)

    # -- cross-process loader lock --------------------------------------------------------
    def _lock_key(self, region: Region, key: str) -> str:
        return f"{self.prefix}:__lock__:{region.name}:{key}"

    def _locked(self, region: Region, key: str, load: Callable[[], Any]) -> Any:
        policy = region.policy
        if not policy.lock or region.l2.private:
            return load()
        tier = region.l2
        lock_key = self._lock_key(region, key)
        deadline = time.monotonic() + policy.lock_timeout
        pause = 0.005
        while True:
            if tier.call(False, tier.driver.add, lock_key, os.getpid(), policy.lock_timeout):
                try:
                    return load()
                finally:
                    tier.call(False, tier.driver.forget, lock_key)
            entry = region._fetch(key, ())
            if entry is not None and entry is not _missing() and entry[1] > region._now():
                return entry[0]
            if time.monotonic() > deadline or tier.down:
                return load()
            time.sleep(pause)
            pause = min(pause * 2, 0.1)

    async def _alocked(self, region: Region, key: str, load: Callable[[], Awaitable[Any]]) -> Any:
        policy = region.policy
        if not policy.lock or region.l2.private:
            return await load()
        tier = region.l2
        lock_key = self._lock_key(region, key)
        deadline = time.monotonic() + policy.lock_timeout
        pause = 0.005
        while True:
            got = await asyncio.to_thread(tier.call, False, tier.driver.add, lock_key, os.getpid(),
                                          policy.lock_timeout)
            if got:
                try:
                    return await load()
                finally:
                    await asyncio.to_thread(tier.call, False, tier.driver.forget, lock_key)
            entry = await asyncio.to_thread(region._fetch, key, ())
            if entry is not _missing() and entry[1] > region._now():
                return entry[0]
            if time.monotonic() > deadline or tier.down:
                return await load()
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.1)

    def _try_lock(self, region: Region, key: str) -> Callable[[], None] | None:
        """The cross-process lock for a background refresh, without waiting: its release, or ``None``
        when another process holds it (and so refreshes). Regions without ``lock`` always get it."""
        if not region.policy.lock or region.l2.private:
            return _no_release
        tier = region.l2
        lock_key = self._lock_key(region, key)
        if not tier.call(False, tier.driver.add, lock_key, os.getpid(), region.policy.lock_timeout):
            return None
        return lambda: tier.call(False, tier.driver.forget, lock_key)

    # -- live configuration ---------------------------------------------------------------
    def update_region(self, name: str, **changes: Any) -> Region:
        """Change fields of region ``name`` in the live config and apply them at once."""
        with self.edit() as config:
            rc = config.regions.get(name)
            if rc is None:
                rc = self._region_config(name).model_copy()
                config.regions[name] = rc
            for field_name, value in changes.items():
                setattr(rc, field_name, value)
        return self.region(name)

    def edit(self) -> contextlib.AbstractContextManager[CacheConfig]:
        """One transaction on the live config: ``with runtime.edit() as config: config.regions[...] = ...``.

        The block changes ``config`` (the live :class:`~cachekit.config.CacheConfig` itself, so
        references to it stay valid); on exit the whole edit is validated and hot-applied at once. An
        exception in the block, or a config that does not validate (``ConfigError``), restores every
        section as it was and re-raises: the live config and the regions are left unchanged. Edits
        serialize on the runtime's lock (an ``RLock``: an edit may call ``update_region`` or nest).
        """
        import copy

        @contextlib.contextmanager
        def transaction() -> Iterator[CacheConfig]:
            with self._lock:
                config = self.config
                saved = {name: copy.deepcopy(getattr(config, name)) for name in type(config).model_fields}
                applying = False
                try:
                    yield config
                    applying = True
                    self.apply()
                except BaseException:
                    changed = False
                    for name, value in saved.items():
                        current = getattr(config, name)
                        if current == value:
                            continue
                        changed = True
                        if isinstance(current, dict):  # in place: a caller may hold the section itself
                            current.clear()
                            current.update(value)
                        elif isinstance(current, list):
                            current[:] = value
                        else:
                            setattr(config, name, value)
                    if changed or applying:
                        try:
                            self.apply()
                        except Exception:  # the restored config was live a moment ago; keep the first error
                            pass
                    raise

        return transaction()

    def apply(self) -> None:
        """Re-validate the live config and re-bind every region to it (data kept where the
        provider did not change)."""
        from ..config.checks import validate_config
        from ..errors import ConfigError

        problems = [p for p in validate_config(self.config) if not self._names_registered_store(p)]
        if problems:
            raise ConfigError(problems, file=getattr(self.config, "source_path", None))
        with self._lock:
            rebuilt = self._drop_changed_drivers()
            self.default_repository = None
            for name in list(self._adhoc):
                if name in self.config.regions or name == self.config.cache.default_region:
                    # declared (or made the default) since: never dropped now
                    self._regions[name] = self._adhoc.pop(name)
            for name, region in [*self._regions.items(), *self._adhoc.items(), *self._evicted.items()]:
                self._build(name, self._policy(name), existing=region, rebuilt=rebuilt)
            default = self.config.cache.default_region
            for store, region in list(self._stores.items()):
                self._build(region.stats.region, self._policy(default, store), existing=region, rebuilt=rebuilt)

    def _drop_changed_drivers(self) -> frozenset[str]:
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
            changed |= {r.l2.provider for r in self._all_regions()}
            changed |= {r.l1.provider for r in self._all_regions() if r.l1 is not None}
        return frozenset(changed)

    def _names_registered_store(self, problem: Any) -> bool:
        """A region naming a store added with ``register_store`` is valid at run time."""
        parts = problem.path.split(".")
        if len(parts) == 3 and parts[0] == "regions" and parts[2] == "provider":
            rc = self.config.regions.get(parts[1])
            return rc is not None and rc.provider in self._custom
        if len(parts) == 4 and parts[0] == "regions" and parts[2:] == ["l1", "provider"]:
            return False
        return False

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write the live config back to its TOML file (comments and formatting kept)."""
        from ..config.save import save_config

        return Path(save_config(self.config, path))

    # -- stats ----------------------------------------------------------------------------
    def _stat_sources(self) -> list[RegionStats]:
        out = []
        for region in self._all_regions():
            st = region.stats
            evictions = 0
            for tier in (region.l2, region.l1):
                if tier is not None and tier.private:
                    evictions += tier.driver.evictions  # type: ignore[attr-defined]
            st.evictions = evictions
            out.append(st)
        folded = self._evicted_stats
        if folded.hits or folded.misses or folded.sets or folded.deletes or folded.errors or folded.loads:
            out.append(folded)
        return out

    def _reset_driver_counters(self) -> None:
        for region in self._all_regions():
            for tier in (region.l2, region.l1):
                if tier is not None and tier.private:
                    tier.driver.evictions = 0  # type: ignore[attr-defined]
        for region in self._all_regions():
            region.stats.evictions = 0

    # -- lifecycle ------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self.closed:
            raise CacheError("this runtime is closed")

    def close(self) -> None:
        """Close every driver's connections. Safe to call twice.

        In an asyncio application prefer ``await runtime.aclose()``: it also closes the running
        loop's Redis asyncio connections, which a sync call cannot await.
        """
        for driver in self._shut():
            try:
                driver.close()
            except Exception:  # closing must not mask the caller's own error
                pass

    async def aclose(self) -> None:
        """:meth:`close` for asyncio code (``async with runtime:`` calls it)."""
        for driver in self._shut():
            try:
                await driver.aclose()
            except Exception:  # closing must not mask the caller's own error
                pass

    def _shut(self) -> list[CacheDriver]:
        """Mark the runtime closed, stop the bus, and hand over the drivers to close (none the second time)."""
        if self.closed:
            return []
        self.closed = True
        if self.bus is not None:
            self.bus.close()
            self.bus = None
        drivers = list(self._drivers.values())
        self._drivers.clear()
        return drivers

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        src = f" from {self.source}" if self.source else ""
        return f"<Runtime{src}: regions={sorted({*self._regions, *self._adhoc})}>"

    @classmethod
    def fake(cls, config: CacheConfig | None = None) -> Runtime:
        """An all-memory runtime with a :class:`FakeClock` (``runtime.clock.advance(60)``)."""
        from ..config.models import CacheConfig

        return cls(config or CacheConfig(), clock=FakeClock(), fake=True)


#: the ``region`` label of the stats row holding the counters of dropped ad-hoc regions
EVICTED_STATS_ROW = "(evicted ad-hoc regions)"


def _fold_stats(stats: RegionStats, into: RegionStats) -> None:
    for name in ("hits", "misses", "sets", "deletes", "errors", "evictions", "loads", "stale_hits",
                 "l1_hits", "load_time"):
        setattr(into, name, getattr(into, name) + getattr(stats, name))


def _missing() -> Any:
    from ..providers.base import MISSING

    return MISSING
