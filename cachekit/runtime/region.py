"""A region: a named caching policy over one or two tiers, with the whole repository API.

Entries are stored as envelopes ``(value, expires_at, stamps)`` so a cached ``None`` is a hit and a
driver's "nothing here" (``MISSING`` or ``None``) is a miss. ``stamps`` is ``None`` or the
generations ``((gen_key, gen), ...)`` the entry was written under (tags, declared pattern rules,
and the region itself on stores that cannot enumerate keys); an entry whose stamp is behind the
current generation is a miss. Shared stores receive plain ``int`` values raw so that the server
can increment them atomically, except stores that sign their payloads: a raw integer carries no
signature, so there every value is an envelope and a raw one is rejected (only cachekit's own
generation keys, a counter namespace, hold raw integers there).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..providers.base import MISSING
from .atomic_lock import Lock
from .bus import Broadcast
from .counters import CounterMixin
from .deadline import one_call
from .l1 import L1
from .locks import NoLocks
from .plans import Plan, drive, many_plan, put_many_plan, read_many, read_one, write_one
from .policy import FOREVER, INF, Policy, normalize_ttl
from .region_async import ASK_L2, AsyncRegionMixin, Stale, is_async_callable
from .region_invalidation import InvalidationMixin
from .remember import RememberMixin
from .singleflight import SingleFlight
from .tags import TaggedCache
from .tier import LocalTier, SharedTier, Tier

__all__ = ["Region", "RegionParts", "TaggedCache", "is_async_callable"]


@dataclass(frozen=True)
class RegionParts:
    """What a region takes from its runtime: the clock, the single-flight, the broadcast (listeners
    and the L1 bus), a way to run a background task, and the live config edit behind ``set_ttl``."""

    now: Callable[[], float]
    singleflight: SingleFlight
    broadcast: Broadcast
    spawn: Callable[[Coroutine[Any, Any, Any]], None]
    update_region: Callable[..., Any]
    events: Any = None  # the runtime's event listeners (:class:`~cachekit.runtime.events.Events`)


class Region(RememberMixin, AsyncRegionMixin, CounterMixin, InvalidationMixin):
    """The repository of one region: ``put get has forget flush remember forever get_many
    put_many increment decrement tags`` and their async twins (``aget``, ``aput``...).

    Obtain one with ``runtime.region("name")``, ``runtime.store("redis")`` or ``Cache.region(...)``.
    """

    def __init__(self, policy: Policy, l2: Tier, l1: Tier | None, parts: RegionParts) -> None:
        self.name = policy.name
        self.stats = l2.stats
        self._now = parts.now
        self._singleflight = parts.singleflight
        self._broadcast = parts.broadcast
        self._spawn = parts.spawn
        self._update_region = parts.update_region
        self._lock = threading.RLock()
        self._refreshing: set[str] = set()
        self._near: L1 | None = None
        self._events = parts.events
        self.configure(policy, l2, l1)

    def now(self) -> float:
        """The time on this region's clock (its runtime's: a fake clock in tests), in seconds."""
        return self._now()

    # -- configuration --------------------------------------------------------------------
    def configure(self, policy: Policy, l2: Tier, l1: Tier | None) -> None:
        """(Re)bind the policy and tiers; used at compile time and when the config is hot-applied."""
        self.policy = policy
        self.l2 = l2
        self.l1 = l1
        self._ttl_rules = bool(policy.ttl_rules)
        # The fast path: an enabled in-process tier, no L1, no generation-stamped patterns.
        self._fast = isinstance(l2, LocalTier) and l1 is None and not policy.pattern_rules and policy.enabled
        self._fast = self._fast and self.stats.trace is None  # a trace sees every access (set_trace)
        #: reads of several keys go to the store in one round trip (a shared L2 without L1)
        self._batched = isinstance(l2, SharedTier) and l1 is None and policy.enabled
        #: unstamped counters live raw in the store: the server increments them atomically
        self._server_counts = isinstance(l2, SharedTier) and l2.raw_ints
        if isinstance(l2, LocalTier):
            self._data_get = l2.memory.peek  # the cell: the entry (value, expires_at, stamps, deadline)
            self._mem = l2.memory
            self._mark_used = l2.memory.mark_used  # a C call on the LRU store (no touch() frame on a hit)
        self._locks: NoLocks = l2.locks(policy)
        near = self._near
        if l1 is None:
            self._near = None
        elif near is not None and near.tier is l1:
            near.ttl = policy.l1_ttl
        else:  # a new L1 tier: a new epoch too, so that no read in flight fills it with an old value
            self._near = L1(l1, policy.l1_ttl, 0 if near is None else near.epoch + 1,  # type: ignore[arg-type]
                            self._broadcast.gate)
        # a shared region flushes by generation when asked to, or when its store cannot list keys
        by_generation = isinstance(l2, SharedTier) and (policy.flush == "generation" or not l2.can_scan)
        self._region_gen = l2.gen_key("region", "") if by_generation else None
        #: entries may carry generation stamps even without tags (declared patterns, region generation)
        self._stamped = bool(policy.pattern_rules) or self._region_gen is not None
        #: the direct path of a shared store (no L1, no stamps to write, no trace, no events): get, put and
        #: get_many make their store call without the plan machinery, under one deadline (``call_once``)
        self._direct = self._batched and not self._stamped and self.stats.trace is None and type(self) is Region
        #: get and get_many take the direct path (``plans.read_one``, ``read_many``) when the only stamp an
        #: entry may carry besides its tags' is the region's generation, read in the same round trip
        self._direct_read = self._batched and not policy.pattern_rules and self.stats.trace is None and \
            type(self) is Region
        self._read_gens: list[str] = [] if self._region_gen is None else [self._region_gen]
        #: put too, when the region's generation is the only stamp (plans.write_one)
        self._direct_put = self._direct_read and self._region_gen is not None

    @property
    def provider(self) -> str:
        return self.l2.provider

    @property
    def default_ttl(self) -> float | None:
        return self.policy.ttl

    @property
    def l1_epoch(self) -> int:
        """Advances with every removal from this region's L1 (a write, an invalidation, a bus
        message); a read fills L1 only if it did not move meanwhile. 0 without an L1."""
        return 0 if self._near is None else self._near.epoch

    @property
    def flushes_by_generation(self) -> bool:
        """A flush advances the region's generation (O(1)) instead of deleting its keys."""
        return self._region_gen is not None

    # -- reads ----------------------------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        """The cached value, or ``default`` on a miss (a cached ``None`` is returned as ``None``)."""
        if self._fast:
            entry = self._data_get(key)
            if entry is None:
                self.policy.check_key(key)  # on a miss only: a stored key was checked when written
                self.stats.misses += 1
                return default
            if entry[1] > self._now() and entry[2] is None:
                if self._mem.lru_active:
                    try:
                        self._mark_used(key)
                    except KeyError:  # removed by another thread meanwhile
                        pass
                self.stats.hits += 1
                return entry[0]
        elif self._direct_read:  # a shared store, no L1, no declared patterns: one store call (read_one)
            policy = self.policy
            if type(key) is not str or not key.isascii() or not 0 < len(key) <= policy.max_key_length:
                policy.check_key(key)
            gens = self._read_gens  # one GET without them (DirectPath.read), else a multi-get (read_one)
            value = read_one(self.l2, key, gens) if gens else self.l2.read(key)  # type: ignore[arg-type, attr-defined]
            return default if value is MISSING else value
        value = self.lookup(key, ())
        return default if value is MISSING else value

    def _fast_hit(self, key: str) -> Any:
        """On the fast path (``self._fast``): the fresh value, counted as a hit, or ``MISSING``
        (nothing counted: the caller goes on to the full lookup)."""
        entry = self._data_get(key)
        if entry is not None and entry[1] > self._now() and entry[2] is None:
            if self._mem.lru_active:
                try:
                    self._mark_used(key)
                except KeyError:  # removed by another thread meanwhile
                    pass
            self.stats.hits += 1
            return entry[0]
        return MISSING

    def has(self, key: str) -> bool:
        """``True`` when a fresh entry exists (a cached ``None`` counts)."""
        return self.lookup(key, ()) is not MISSING

    def get_many(self, keys: Iterable[str], default: Any = None) -> dict[str, Any]:
        """``{key: value or default}``; shared stores answer in one round trip."""
        keys = list(keys)
        if self._direct_read:  # one MGET settled straight into the answer (plans.read_many)
            self.policy.check_keys(keys)
            return read_many(self.l2, keys, self._now, self.stats, default,  # type: ignore[arg-type, no-any-return]
                             self._read_gens)
        found = self.lookup_many(keys, ())
        return {k: (default if found[k] is MISSING else found[k]) for k in keys}

    many = get_many

    def entry(self, key: str) -> tuple[Any, float] | None:
        """``(value, expires_at)`` of a fresh entry (``expires_at`` is ``inf`` for no expiry), or
        ``None``; no stats counted."""
        entry = self._fetch(key, ())
        if entry is MISSING or entry[1] <= self._now():
            return None
        return entry[0], entry[1]

    def peek(self, key: str, default: Any = None) -> Any:
        """The cached value without counting a hit or a miss and without filling L1 (for assertions,
        dashboards and the HTTP API)."""
        if self._near is not None:
            value = self._near.get(key, self._now())
            if value is not MISSING:
                return value
        entry = self._fetch(key, ())
        if entry is MISSING or entry[1] <= self._now():
            return default
        return entry[0]

    def pull(self, key: str, default: Any = None) -> Any:
        """Get and forget."""
        value = self.get(key, MISSING)
        if value is MISSING:
            return default
        self.forget(key)
        return value

    def lookup(self, key: str, tags: tuple[str, ...], *, allow_stale: bool = False) -> Any:
        value = self._before_fetch(key)
        stats = self.stats
        if value is ASK_L2:
            epoch = 0 if self._near is None else self._near.epoch
            # a read that goes to L2 is timed (the in-process fast path and L1 hits are not)
            entry = stats.timed("get", self._fetch, key, tags) if stats.timing else self._fetch(key, tags)
            value = self._settle(key, entry, allow_stale, epoch)
        if stats.trace is not None:
            stats.trace.event(self.name, key, "get", value is not MISSING, value)
        return value

    def _before_fetch(self, key: str) -> Any:
        """A disabled region's miss, an L1 hit, or ``ASK_L2`` when L2 must be asked."""
        if not self.policy.enabled:
            self.stats.misses += 1
            return MISSING
        near = self._near
        if near is not None:
            value = near.get(key, self._now())
            if value is not MISSING:
                self.stats.hits += 1
                self.stats.l1_hits += 1
                return value
        return ASK_L2

    def _settle(self, key: str, entry: Any, allow_stale: bool, epoch: int) -> Any:
        """Count a fetched entry as a hit, a stale hit or a miss; fill L1 on a hit."""
        stats = self.stats
        if entry is MISSING:
            stats.misses += 1
            return MISSING
        now = self._now()
        expires = entry[1]
        policy = self.policy
        if expires <= now:
            if allow_stale and policy.stale_ttl and now < expires + policy.stale_ttl:
                stats.stale_hits += 1
                return Stale(entry[0])
            stats.misses += 1
            return MISSING
        if self._near is not None:
            self._near.fill(key, entry[0], expires, now, epoch)
        stats.hits += 1
        return entry[0]

    # -- L2 reads ---------------------------------------------------------------------------
    def _fetch(self, key: str, tags: tuple[str, ...]) -> Any:
        """The entry for ``key`` from L2 with its stamps checked, or MISSING."""
        self.policy.check_key(key)
        return self.l2.fetch(key, self._gen_keys(key, tags))

    def lookup_many(self, keys: list[str], tags: tuple[str, ...]) -> dict[str, Any]:
        if not self._batched:
            return {k: self.lookup(k, tags) for k in keys}
        found = drive(self.l2, self._many_plan(keys, tags))
        # one undecodable payload fails the whole multi-get, but the store is up (not an outage):
        # key by key, the readable entries are still served and only the bad one is a miss
        if found is None:
            return {k: self.lookup(k, tags) for k in keys}
        return found  # type: ignore[no-any-return]

    # -- writes ---------------------------------------------------------------------------
    def put(self, key: str, value: Any, ttl: Any = None) -> bool:
        """Store ``value``; ``ttl`` in seconds (or a ``timedelta``), default: the region's policy."""
        policy = self.policy
        if type(key) is not str or not key.isascii() or not 0 < len(key) <= policy.max_key_length:
            policy.check_key(key)  # the common key (ASCII, not empty, not too long) passes without the call
        ttl = policy.ttl_for(key, ttl) if self._ttl_rules or ttl is not None else policy.ttl
        if self._fast:  # store()'s fast path (private memory, no stamps, no L1), one clock read
            # one cell, one dict assignment: the entry and the store's deadline (kept through stale_ttl)
            if ttl is None:
                self._mem.put_cell(key, (value, INF, None, INF))
            else:
                expires = self._now() + ttl
                stale = policy.stale_ttl
                self._mem.put_cell(key, (value, expires, None, expires + stale if stale else expires))
            self.stats.sets += 1
            return True
        if self._direct:  # a shared store, no L1, no stamps: one PUT (SharedTier.write)
            return self.l2.write(key, value, ttl, policy.stale_ttl)  # type: ignore[attr-defined, no-any-return]
        if self._direct_put:  # stamped with the region's generation alone: one round trip (plans.write_one)
            return write_one(self.l2, key, value, ttl, policy, self._read_gens)  # type: ignore[arg-type]
        return self.store(key, value, ttl, ())

    set = put

    def forever(self, key: str, value: Any) -> bool:
        """Store without expiry (until forgotten, flushed or invalidated)."""
        self.policy.check_key(key)
        return self.store(key, value, None, ())

    def add(self, key: str, value: Any, ttl: Any = None) -> bool:
        """Store only if absent; ``True`` when stored."""
        with self._lock:
            if self.has(key):
                return False
            return self.put(key, value, ttl)

    def store(self, key: str, value: Any, ttl: float | None, tags: tuple[str, ...]) -> bool:
        if self._fast and not tags:  # private memory, no stamps, no L1: put() writes it as the plan would
            return self.put(key, value, FOREVER if ttl is None else ttl)
        if not self.policy.enabled:
            return False
        stats = self.stats
        if stats.trace is not None:
            stats.trace.event(self.name, key, "put", False, value)
        plan = self._store_plan(key, value, ttl, tags)
        ok = stats.timed("put", drive, self.l2, plan) if stats.timing else drive(self.l2, plan)
        return self._stored(key, value, ttl, tags, ok)

    def _store_plan(self, key: str, value: Any, ttl: float | None, tags: tuple[str, ...],
                    kept: Any = None) -> Plan:
        """Write one entry with the stamps that apply (``kept``: an increment keeps its entry's)."""
        expires = self._now() + ttl if ttl is not None else INF
        keep = None if ttl is None else ttl + (self.policy.stale_ttl or 0)
        if not kept:  # one round trip where the tier can (an increment keeps its own stamps)
            done = yield from self._put_stamped_plan(key, value, expires, tags, keep)
            if done is not None:
                return done
        stamps = yield from self._stamps_plan(key, tags, keep)
        if stamps is False:  # generations unreadable: the store is failing
            return False
        if kept:  # an increment: the stamps the entry had (still current: it was just read) stay
            have = {k for k, _ in kept}
            stamps = tuple(map(tuple, kept)) + tuple(s for s in stamps or () if s[0] not in have)
        return (yield from self.l2.put_plan(key, value, expires, stamps, ttl, keep))

    def _stored(self, key: str, value: Any, ttl: float | None, tags: tuple[str, ...], ok: bool) -> bool:
        """After a write to L2: L1 and the counters."""
        if self._near is not None:
            self._l1_forget(key)  # advances the epoch: reads in flight do not fill L1 with the old value
            if ok and not tags:
                now = self._now()
                self._near.fill(key, value, now + ttl if ttl is not None else INF, now)
        if ok:
            self.stats.sets += 1
        return ok

    def put_many(self, mapping: Mapping[str, Any], ttl: Any = None) -> bool:
        """Store several values; shared stores take them in one round trip."""
        if self._put_one_by_one():
            ok = True
            for k, v in mapping.items():
                ok = self.put(k, v, ttl) and ok
            return ok
        return drive(self.l2, put_many_plan(self.l2, self.policy, self.stats, self._now(), mapping, ttl))  # type: ignore[no-any-return]

    def _many_plan(self, keys: list[str], tags: tuple[str, ...]) -> Plan:
        self.policy.check_keys(keys)
        gen_keys: list[str] = []
        for k in keys if tags or self._stamped else ():  # else no key depends on a generation
            gen_keys.extend(g for g in self._gen_keys(k, tags) if g not in gen_keys)
        return many_plan(self.l2, keys, gen_keys, self._now, self.stats)  # type: ignore[arg-type]

    def _put_one_by_one(self) -> bool:
        # stamps (declared patterns, the region generation) force per-key writes: each key's stamps are
        # the generations it matches, read (and kept alive) with its own write; a batch is unstamped
        return not self._batched or bool(self.policy.pattern_rules or self._region_gen)

    def forget(self, key: str) -> bool:
        """Remove ``key``; ``True`` if it was there."""
        self.policy.check_key(key)
        stats = self.stats
        removed = stats.timed("delete", self.l2.forget, key) if stats.timing else self.l2.forget(key)
        if stats.trace is not None:
            stats.trace.event(self.name, key, "delete")
        self._l1_forget(key)
        stats.deletes += 1
        return removed

    delete = forget

    def forget_many(self, keys: Iterable[str]) -> int:
        keys = list(map(self.policy.checked, keys))
        tier = self.l2
        n = int(tier.call(0, tier.driver.delete_many, [tier.key(k) for k in keys]))
        if self._near is not None:
            self.drop_l1(keys)
            self._publish("forget_many", keys)
        self.stats.deletes += n
        return n

    def flush(self) -> bool:
        """Remove every entry of this region (and nothing else in a shared store)."""
        tier = self.l2
        try:
            if isinstance(tier, LocalTier):
                return tier.flush()
            if self._region_gen is not None:
                return tier.advance(self._region_gen)
            keys = tier.scan("*")
            if keys is None:
                return False
            self.forget_many(keys)
            tier.drop_generations()  # type: ignore[attr-defined]
            return True
        finally:
            self._clear_l1()

    clear = flush

    # -- patterns -------------------------------------------------------------------------
    def keys(self, pattern: str = "*") -> list[str]:
        """Keys of this region matching a glob; raises UnsupportedOperation where the store cannot list.

        A failing store gives ``[]`` (the error counted), or raises with ``on_error = "raise"``."""
        found = self.l2.scan(pattern)
        return [] if found is None else found

    # -- misc -----------------------------------------------------------------------------
    def lock(self, name: str, seconds: float = 10, owner: str | None = None, *, wait: float | None = None) -> Lock:
        """An atomic lock ``name`` in this region's store, held for ``seconds`` (:class:`~cachekit.Lock`)."""
        return Lock(self.l2.driver, self.l2.lock_key(name), seconds, owner, name=name, wait=wait)

    def set_ttl(self, ttl: Any) -> None:
        """Change the default TTL of this region live (and in ``runtime.config``)."""
        ttl_s = normalize_ttl(ttl)
        self._update_region(self.name, ttl=ttl_s)

    def __repr__(self) -> str:
        tiers = f"{self.l1.provider} -> {self.l2.provider}" if self.l1 else self.l2.provider
        return f"<Region {self.name!r} on {tiers}, ttl={self.policy.ttl}>"


for _name in ("entry", "peek", "lookup", "lookup_many", "bump", "add", "store", "put_many", "forget", "forget_many",
              "flush", "keys", "flush_tags"):  # each reaches L2: one call, one deadline on a shared store (deadline.py)
    setattr(Region, _name, one_call(getattr(Region, _name)))
