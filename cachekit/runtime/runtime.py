"""The live runtime compiled from a :class:`~cachekit.config.CacheConfig`: region and store
lookup, stats wiring and lifecycle; edits and hot-apply are mixed in from ``live_config.py``. The
parts it wires live beside it: the compiler (``compile.py``), the invalidator, the broadcast and bus
(``bus.py``), the regions."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..clock import Clock, FakeClock, SystemClock
from ..config.models import region_name_problem
from ..errors import CacheError
from ..providers.base import CacheDriver
from ..stats import Recorder, Stats
from .atomic_lock import Lock
from .bus import Broadcast, Bus
from .compile import Compiler
from .events import CacheEvent, Events
from .invalidator import InvalidationResult, Invalidator
from .live_config import LiveConfigMixin
from .region import Region, RegionParts
from .singleflight import SingleFlight

if TYPE_CHECKING:
    from ..config.models import CacheConfig

__all__ = ["EVICTED_STATS_ROW", "InvalidationResult", "Runtime"]

#: the ``region`` label of the stats row holding the counters of dropped ad-hoc regions
EVICTED_STATS_ROW = "(evicted ad-hoc regions)"


class Runtime(LiveConfigMixin):
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
        self.clock: Clock = clock or SystemClock()
        self.fake = fake
        self.singleflight = SingleFlight()
        self.source = source
        self.id = uuid.uuid4().hex
        self._lock = threading.RLock()
        self.compiler = Compiler(config, clock=self.clock, fake=fake, origin=self.id)
        #: declared regions and the default one: never dropped
        self._regions: dict[str, Region] = {}
        #: regions used in code but not declared, least recently used first, at most
        #: ``[cache].max_adhoc_regions``; a dropped one is rebuilt on next use (or taken back from
        #: ``_evicted`` while something, a decorator say, still holds it: one Region per name)
        self._adhoc: OrderedDict[str, Region] = OrderedDict()
        self._evicted: weakref.WeakValueDictionary[str, Region] = weakref.WeakValueDictionary()
        #: the counters of dropped ad-hoc regions, folded together so that totals never go down
        self._evicted_stats = Recorder(EVICTED_STATS_ROW, "")
        self._stores: dict[str, Region] = {}
        self._default_store: str | None = None
        #: the repository plain facade calls use; resolved once, reset when the default changes
        self.default_repository: Region | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self.closed = False
        self.broadcast = Broadcast(self._all_regions)
        self.invalidator = Invalidator(lambda: self.config, self._targets, self.broadcast)
        self.events = Events(self._all_regions)
        self._parts = RegionParts(now=self.clock.now, singleflight=self.singleflight, broadcast=self.broadcast,
                                  spawn=self._spawn, update_region=self.update_region, events=self.events)
        #: the active ``trace()`` (a :class:`cachekit.stats.Tracer`), else ``None``
        self._tracer: Any = None
        self.stats = Stats(self._stat_sources, clock=self.clock.now, on_reset=self._reset_driver_counters)
        self.stats.breakers = self.breakers  # type: ignore[method-assign]

    # -- configuration --------------------------------------------------------------------
    @property
    def config(self) -> CacheConfig:
        """The live config (edit it, then :meth:`apply`)."""
        return self.compiler.config

    @config.setter
    def config(self, config: CacheConfig) -> None:
        self.compiler.config = config

    @property
    def prefix(self) -> str:
        return self.config.cache.prefix

    @property
    def bus(self) -> Bus | None:
        """The cross-process L1 bus, once a region needed it (``None`` before, and without one)."""
        return self.broadcast.bus

    def provider_config(self, name: str) -> Any:
        """The config of provider ``name``: declared, or the default of a built-in type."""
        return self.compiler.provider_config(name)

    def _build(self, label: str, policy: Any, existing: Region | None = None,
               rebuilt: frozenset[str] = frozenset()) -> Region:
        region = self.compiler.build(label, policy, self._parts, existing, rebuilt)
        if self.events.active:  # listeners already: a new region reports too
            self.events.instrument(region)
        if region.stats.trace is not self._tracer:
            region.set_trace(self._tracer)  # built while a trace runs: traced too
        return region

    # -- lookup ---------------------------------------------------------------------------
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
                        region = self._regions[name] = self._build(name, self.compiler.policy(name))
                    else:
                        region = self._adhoc_region(name)
        return region

    def _adhoc_region(self, name: str) -> Region:
        """Build (or take back) the ad-hoc region ``name``, dropping the least recently used ones past
        ``[cache].max_adhoc_regions``. Called under the lock."""
        region = self._evicted.pop(name, None)
        if region is None:
            region = self._build(name, self.compiler.policy(name))
            # once dropped and no longer referenced, its counters go to the "evicted" row
            weakref.finalize(region, self._evicted_stats.add, region.stats).atexit = False
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
                    if name not in self.compiler.custom:
                        self.provider_config(name)  # unknown names fail here, with suggestions
                    region = self._stores[name] = self._build(f"{default}@{name}",
                                                              self.compiler.policy(default, name))
        return region

    def register_store(self, name: str, driver: CacheDriver) -> None:
        """Make ``driver`` available as ``store(name)`` and as a provider name for regions."""
        if not isinstance(driver, CacheDriver):
            raise CacheError(f"register_store needs a CacheDriver instance, not {type(driver).__name__}")
        with self._lock:
            self.compiler.register(name, driver)
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

    def _targets(self, region: str | Iterable[str] | None) -> list[Region]:
        if region is None:
            self.regions()
            return list(self._all_regions())
        names = [region] if isinstance(region, str) else list(region)
        targets = [self.region(n) for n in names]
        # store views (Cache.store('redis')) of a region share its name and namespace
        targets += [s for s in self._stores.values() if s.name in names and s not in targets]
        return targets

    # -- invalidation and events (see invalidator.py) ---------------------------------------
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
        return self.invalidator.invalidate(pattern, tags, region, dry_run=dry_run)

    def emit(self, event: str, /, **params: Any) -> InvalidationResult:
        """Fire ``event``: every enabled ``event_based`` rule listing it invalidates its patterns
        (templates filled from ``params``: ``user:{user_id}``), tags and, if set, regions."""
        return self.invalidator.emit(event, params)

    @contextlib.contextmanager
    def trace(self, sample: float = 1.0, max_events: int | None = 1_000_000) -> Iterator[Any]:
        """Record every access into a :class:`cachekit.simulate.Trace` during the block (docs/stats.md)."""
        from ..simulate import Trace
        from ..stats import Tracer

        self._tracer = tracer = Tracer(Trace(sample=sample, max_events=max_events), self.clock.now)
        try:
            for region in list(self._all_regions()):
                region.set_trace(tracer)
            yield tracer.trace
        finally:
            self._tracer = None
            for region in [r for r in self._all_regions() if r.stats.trace is tracer]:
                region.set_trace(None)

    def find_matching_rules(self, key: str, region: str | None = None) -> list[Any]:
        """Enabled rules whose pattern (or pattern template, wildcards for parameters) matches ``key``."""
        return self.invalidator.find_matching_rules(key, region)

    def subscribe(self, listener: Callable[[str, str, Any], None]) -> Callable[[], None]:
        """Call ``listener(kind, name, payload)`` on invalidations and events; returns an unsubscribe."""
        return self.broadcast.subscribe(listener)

    def on(self, kind: str, listener: Callable[[CacheEvent], Any]) -> Callable[[], None]:
        """Call ``listener(event)`` on every ``"hit"``, ``"miss"``, ``"write"``, ``"forget"`` or
        ``"invalidate"`` (a :class:`~cachekit.CacheEvent`); returns an unsubscribe callable. Free while
        nobody listens."""
        return self.events.on(kind, listener)

    def lock(self, name: str, seconds: float = 10, owner: str | None = None, *,
             wait: float | None = None) -> Lock:
        """An atomic lock in the default store (``runtime.store(name).lock(...)`` for another)."""
        return self.region().lock(name, seconds, owner, wait=wait)

    def restore_lock(self, name: str, owner: str) -> Lock:
        """The lock ``name`` as held by ``owner`` (a token from another process), to release it."""
        return self.lock(name, owner=owner)

    # -- stats ----------------------------------------------------------------------------
    def _stat_sources(self) -> list[Recorder]:
        out = []
        for region in self._all_regions():
            st = region.stats
            l1 = region.l1
            st.two_tier = l1 is not None
            st.l1_evictions = l1.evictions if l1 is not None else 0
            st.l1_expirations = getattr(l1.driver, "expirations", 0) if l1 is not None else 0
            st.evictions = region.l2.evictions + st.l1_evictions
            st.expirations = getattr(region.l2.driver, "expirations", 0) + st.l1_expirations
            out.append(st)
        if self._evicted_stats.active():
            out.append(self._evicted_stats)
        return out

    def breakers(self) -> dict[str, dict[str, Any]]:
        """The circuit breaker of each provider that has one (``breaker = {...}``) and is in use:
        ``{provider: {"state": "closed" | "open" | "half-open", "failures", "opened", "skipped", "opens"}}``."""
        return {name: breaker.snapshot() for name, breaker in list(self.compiler.breakers.items())}

    def _reset_driver_counters(self) -> None:
        for region in self._all_regions():
            region.l2.reset_evictions()
            if region.l1 is not None:
                region.l1.reset_evictions()
            for tier in (region.l2, region.l1):
                if tier is not None and hasattr(tier.driver, "expirations"):
                    tier.driver.expirations = 0
            region.stats.evictions = 0

    # -- lifecycle ------------------------------------------------------------------------
    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` as a task of the running loop, held until done (a background refresh)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

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
        self.broadcast.close()
        return self.compiler.take_drivers()

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
