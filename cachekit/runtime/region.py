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

import asyncio
import inspect
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable, Mapping
from dataclasses import dataclass
from inspect import CO_COROUTINE
from types import FunctionType, MethodType
from typing import Any

from ..errors import CacheError
from ..providers.base import MISSING
from ..serializers import TamperedPayloadError
from .bus import Broadcast
from .locks import NoLocks, RegionLocks
from .policy import FOREVER, INF, Policy, escape_glob, normalize_ttl
from .singleflight import SingleFlight
from .tags import TaggedCache
from .tier import LocalTier, SharedTier, Tier

__all__ = ["Region", "RegionParts", "TaggedCache"]

#: a generator yielding driver operations ``(method, args, fallback)`` and returning a result
Plan = Generator[tuple[str, tuple[Any, ...], Any], Any, Any]
#: ``_before_fetch`` says: ask L2
_FETCH = object()
_NO_KEYS: list[str] = []  # shared and never mutated: "no generations apply"


def _as_entry(obj: Any) -> Any:
    """Normalise what a driver returned into an entry tuple, or MISSING."""
    t = type(obj)
    if t is tuple:
        return obj if len(obj) == 3 else MISSING
    if t is list and len(obj) == 3:  # JSON/msgpack round trip
        value, expires, stamps = obj
        return (value, INF if expires is None else expires, tuple(map(tuple, stamps)) if stamps else None)
    if t is int:  # a raw counter, stored natively by the server
        return (obj, INF, None)
    return MISSING


def is_async_callable(fn: Any) -> bool:
    """``True`` for coroutine functions, partials of them and objects with an ``async __call__``."""
    kind = type(fn)
    if kind is FunctionType or kind is MethodType:  # the common case, answered from the code flags
        return bool(fn.__code__.co_flags & CO_COROUTINE)
    while hasattr(fn, "func"):  # functools.partial
        fn = fn.func
    if inspect.iscoroutinefunction(fn):
        return True
    return not inspect.isroutine(fn) and inspect.iscoroutinefunction(type(fn).__call__)  # type: ignore[operator]


@dataclass(frozen=True)
class RegionParts:
    """What a region takes from its runtime: the clock, the single-flight, the broadcast (listeners
    and the L1 bus), a way to run a background task, and the live config edit behind ``set_ttl``."""

    now: Callable[[], float]
    singleflight: SingleFlight
    broadcast: Broadcast
    spawn: Callable[[Coroutine[Any, Any, Any]], None]
    update_region: Callable[..., Any]


class Region:
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
        # L1 consistency: every removal from L1 (a local write, a bus message) advances the epoch
        # under the lock; a read fills L1 only if no removal happened since it started reading L2,
        # so a value read before a concurrent write can never be parked in L1 after it.
        self._l1_epoch = 0
        self._l1_lock = threading.Lock()
        #: generations (tags, rules, the region) whose advance failed while the store was down:
        #: entries stamped with them read as misses until the advance is replayed on recovery
        self._pending_gens: set[str] = set()
        #: generation key -> (value, until when this process made it live): skips redundant refreshes
        self._gen_alive: dict[str, tuple[int, float]] = {}
        self.configure(policy, l2, l1)

    # -- configuration --------------------------------------------------------------------
    def configure(self, policy: Policy, l2: Tier, l1: Tier | None) -> None:
        """(Re)bind the policy and tiers; used at compile time and when the config is hot-applied."""
        self.policy = policy
        self.l2 = l2
        self.l1 = l1
        l2.on_recover = self._replay_pending
        self._ttl_rules = bool(policy.ttl_rules)
        local = isinstance(l2, LocalTier)
        self._local = local
        # The fast path: an enabled in-process tier, no L1, no generation-stamped patterns.
        self._fast = local and l1 is None and not policy.pattern_rules and policy.enabled
        if isinstance(l2, LocalTier):
            self._data_get = l2.memory.peek
            self._mem = l2.memory
            self._locks: NoLocks = NoLocks()
        elif isinstance(l2, SharedTier):
            self._locks = RegionLocks(l2, enabled=policy.lock, timeout=policy.lock_timeout)
        # a shared region flushes by generation when asked to, or when its store cannot list keys
        by_generation = not local and (policy.flush == "generation" or not l2.can_scan)
        self._region_gen = self._gen_key("region", "") if by_generation else None
        #: entries may carry generation stamps even without tags (declared patterns, region generation)
        self._stamped = bool(policy.pattern_rules) or self._region_gen is not None

    @property
    def provider(self) -> str:
        return self.l2.provider

    @property
    def default_ttl(self) -> float | None:
        return self.policy.ttl

    @property
    def flushes_by_generation(self) -> bool:
        """A flush advances the region's generation (O(1)) instead of deleting its keys."""
        return self._region_gen is not None

    def _gen_key(self, kind: str, name: str) -> str:
        return self.l2.gen_key(kind, name)  # type: ignore[attr-defined,no-any-return]

    # -- reads ----------------------------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        """The cached value, or ``default`` on a miss (a cached ``None`` is returned as ``None``)."""
        if self._fast:
            entry = self._data_get(key)
            if entry is None:
                self.stats.misses += 1
                return default
            if entry[1] > self._now() and entry[2] is None:
                if self._mem.lru_active:
                    self._mem.touch(key)
                self.stats.hits += 1
                return entry[0]
        value = self.lookup(key, ())
        return default if value is MISSING else value

    def _fast_hit(self, key: str) -> Any:
        """On the fast path (``self._fast``): the fresh value, counted as a hit, or ``MISSING``
        (nothing counted: the caller goes on to the full lookup)."""
        entry = self._data_get(key)
        if entry is not None and entry[1] > self._now() and entry[2] is None:
            if self._mem.lru_active:
                self._mem.touch(key)
            self.stats.hits += 1
            return entry[0]
        return MISSING

    def has(self, key: str) -> bool:
        """``True`` when a fresh entry exists (a cached ``None`` counts)."""
        return self.lookup(key, ()) is not MISSING

    def get_many(self, keys: Iterable[str], default: Any = None) -> dict[str, Any]:
        """``{key: value or default}``; shared stores answer in one round trip."""
        keys = list(keys)
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
        if self.l1 is not None:
            e = self.l1.driver.get(key)
            if e is not MISSING and e[1] > self._now():
                return e[0]
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
        hit = self._before_fetch(key)
        if hit is not _FETCH:
            return hit
        epoch = self._l1_epoch
        return self._settle(key, self._fetch(key, tags), allow_stale, epoch)

    async def alookup(self, key: str, tags: tuple[str, ...], *, allow_stale: bool = False) -> Any:
        hit = self._before_fetch(key)
        if hit is not _FETCH:
            return hit
        epoch = self._l1_epoch
        return self._settle(key, await self._afetch(key, tags), allow_stale, epoch)

    def _before_fetch(self, key: str) -> Any:
        """A disabled region's miss, an L1 hit, or ``_FETCH`` when L2 must be asked."""
        if not self.policy.enabled:
            self.stats.misses += 1
            return MISSING
        l1 = self.l1
        if l1 is not None:
            e = l1.driver.get(key)
            if e is not MISSING and e[1] > self._now():
                self.stats.hits += 1
                self.stats.l1_hits += 1
                return e[0]
        return _FETCH

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
                return _Stale(entry[0])
            stats.misses += 1
            return MISSING
        if self.l1 is not None:
            self._l1_fill(key, entry[0], expires, now, epoch)
        stats.hits += 1
        return entry[0]

    # -- L1 maintenance -------------------------------------------------------------------
    def _l1_fill(self, key: str, value: Any, expires: float, now: float, epoch: int | None = None) -> None:
        """Put ``value`` in L1 until the sooner of ``expires`` and the L1 TTL; with ``epoch``, only if
        nothing was removed from L1 since that epoch was read (a concurrent write or invalidation)."""
        l1_ttl = self.policy.l1_ttl
        deadline = expires if not l1_ttl or expires < now + l1_ttl else now + l1_ttl
        driver = self.l1.driver  # type: ignore[union-attr]
        with self._l1_lock:
            if epoch is not None and epoch != self._l1_epoch:
                return
            driver.put(key, (value, deadline, None), None if deadline == INF else deadline - now)

    def drop_l1(self, keys: Iterable[str] | None) -> None:
        """Remove ``keys`` (``None``: everything) from L1 and advance the epoch; no bus message."""
        l1 = self.l1
        if l1 is None:
            return
        with self._l1_lock:
            self._l1_epoch += 1
            if keys is None:
                l1.driver.flush()
            else:
                for k in keys:
                    l1.driver.forget(k)

    def _l1_forget(self, key: str) -> None:
        """After a change of ``key`` in L2: drop it from this L1 and tell the other processes."""
        if self.l1 is not None:
            self.drop_l1((key,))
            self._publish("forget", key)

    def _publish(self, kind: str, key: Any) -> None:
        """Tell the other processes' L1s (a bus failure is counted)."""
        if not self._broadcast.publish(self.name, kind, key):
            self.stats.errors += 1

    # -- shared-store I/O as plans ----------------------------------------------------------
    # A plan is a generator that yields driver operations ``(method, args, fallback)`` and
    # receives their results; ``_drive`` runs it with the sync driver, ``_adrive`` with the
    # driver's async twins (native asyncio on Redis, a worker thread elsewhere). One logic, two I/O.
    def _drive(self, plan: Plan) -> Any:
        tier = self.l2
        driver = tier.driver
        try:
            op = next(plan)
            while True:
                op = plan.send(tier.call(op[2], getattr(driver, op[0]), *op[1]))
        except StopIteration as done:
            return done.value

    async def _adrive(self, plan: Plan) -> Any:
        tier = self.l2
        driver = tier.driver
        try:
            op = next(plan)
            while True:
                op = plan.send(await tier.acall(op[2], getattr(driver, "a" + op[0]), *op[1]))
        except StopIteration as done:
            return done.value

    def _fetch_plan(self, key: str, tags: tuple[str, ...]) -> Plan:
        full = self.l2.namespace + key
        # generations pending when the read starts: the call that finds the store back replays them
        # (Tier.recovered) after its own answer was read, so that answer is checked against these
        pending = frozenset(self._pending_gens) if self._pending_gens else None
        gen_keys = self._gen_keys(key, tags)
        if gen_keys:
            got = yield ("get_many", ([full, *gen_keys],), None)
            if got is None:
                return MISSING
            entry = self._entry(got.get(full, MISSING))
        else:
            got = {}
            entry = self._entry((yield ("get", (full,), MISSING)))
        if entry is MISSING:
            return MISSING
        current = yield from self._stamps_current_plan(entry[2], got, pending)
        return entry if current else MISSING

    def _entry(self, obj: Any) -> Any:
        """:func:`_as_entry`, refusing a raw integer where the store signs payloads (counted, a miss)."""
        if type(obj) is int and not self.l2.raw_ints:
            # unsigned, so anyone who can write to the store could have planted it over a signed entry
            return self.l2.failed(TamperedPayloadError(
                "unsigned integer payload rejected: this store signs its payloads and keeps counters "
                "in signed entries"), MISSING)
        return _as_entry(obj)

    def _stamps_current_plan(self, stamps: Any, known: dict[str, Any], pending: frozenset[str] | None = None) -> Plan:
        if not stamps:
            return True
        pending = pending or self._pending_gens
        if pending and any(k in pending for k, _ in stamps):
            return False  # invalidated during an outage, not yet replayed in the store
        unknown = [k for k, _ in stamps if k not in known]
        if unknown:
            more = yield ("get_many", (unknown,), None)
            if more is None:
                return False
            known = {**known, **more}
        return all(known.get(k, MISSING) == gen for k, gen in stamps)

    def _fetch(self, key: str, tags: tuple[str, ...]) -> Any:
        """The entry for ``key`` from L2 with its stamps checked, or MISSING."""
        if self._local:
            return self.l2.fetch(key)  # type: ignore[attr-defined]
        return self._drive(self._fetch_plan(key, tags))

    async def _afetch(self, key: str, tags: tuple[str, ...]) -> Any:
        if self._local:
            return self.l2.fetch(key)  # type: ignore[attr-defined]
        return await self._adrive(self._fetch_plan(key, tags))

    def lookup_many(self, keys: list[str], tags: tuple[str, ...]) -> dict[str, Any]:
        if self._local or self.l1 is not None or not self.policy.enabled:
            return {k: self.lookup(k, tags) for k in keys}
        found = self._drive(self._many_plan(keys, tags))
        if found is None:  # one unreadable payload: do not lose the whole batch
            return {k: self.lookup(k, tags) for k in keys}
        return found  # type: ignore[no-any-return]

    async def alookup_many(self, keys: list[str], tags: tuple[str, ...]) -> dict[str, Any]:
        if self._local or self.l1 is not None or not self.policy.enabled:
            return {k: await self.alookup(k, tags) for k in keys}
        found = await self._adrive(self._many_plan(keys, tags))
        if found is None:
            return {k: await self.alookup(k, tags) for k in keys}
        return found  # type: ignore[no-any-return]

    def _many_plan(self, keys: list[str], tags: tuple[str, ...]) -> Plan:
        """One multi-get for every key and every generation they depend on."""
        ns = self.l2.namespace
        gen_keys: list[str] = []
        for k in keys:
            gen_keys.extend(g for g in self._gen_keys(k, tags) if g not in gen_keys)
        fulls = [ns + k for k in keys]
        pending = frozenset(self._pending_gens) if self._pending_gens else None  # see _fetch_plan
        got = yield ("get_many", (fulls + gen_keys,), None)
        if got is None and not self.l2.down:
            return None
        now = self._now()
        out: dict[str, Any] = {}
        for k, full in zip(keys, fulls, strict=True):
            entry = MISSING if got is None else self._entry(got.get(full, MISSING))
            if entry is not MISSING and entry[1] > now and (
                    yield from self._stamps_current_plan(entry[2], got or {}, pending)):
                self.stats.hits += 1
                out[k] = entry[0]
            else:
                self.stats.misses += 1
                out[k] = MISSING
        return out

    # -- generations ----------------------------------------------------------------------
    def _gen_keys(self, key: str, tags: Iterable[str]) -> list[str]:
        if not tags and not self._stamped:
            return _NO_KEYS
        keys = [self._gen_key("tag", t) for t in tags]
        for regex, rule in self.policy.pattern_rules:
            if regex.match(key):
                keys.append(self._gen_key("rule", rule))
        if self._region_gen is not None:
            keys.append(self._region_gen)
        return keys

    def _stamps_plan(self, key: str, tags: tuple[str, ...], keep: float | None = None) -> Plan:
        """The stamps a new entry carries: ``None`` (none apply), a tuple, or ``False`` (store failing).

        ``keep`` is how long the store keeps the entry (``None``: no expiry); the generation keys it is
        stamped with are made to live at least that long (refreshed on use), so they expire once no
        entry can carry them."""
        gen_keys = self._gen_keys(key, tags)
        if not gen_keys:
            return None
        if self._local:
            return self.l2.stamp(gen_keys)  # type: ignore[attr-defined,no-any-return]
        got = yield ("get_many", (gen_keys,), None)
        if got is None:
            return False
        # twice the needed life, so that the next writes of the next ``life`` seconds skip the refresh
        life = self._gen_life(keep)
        ttl = None if life is None else 2 * life
        absent = [k for k in gen_keys if not isinstance(got.get(k), int)]
        created = set()
        if absent:
            # A fresh (or evicted) generation starts at a unique value, never at one an old entry has.
            seed = time.time_ns() // 1000
            for k in absent:
                if (yield ("add", (k, seed, ttl), False)):
                    created.add(k)
            more = yield ("get_many", (absent,), None)
            if more is None:
                return False
            got.update(more)
        stamps = tuple((k, got[k]) for k in gen_keys)
        alive = self._gen_alive
        now = self._now()
        needed = INF if life is None else now + life
        stale = []
        for k, gen in stamps:
            known = alive.get(k)
            if k not in created and (known is None or known[0] != gen or known[1] < needed):
                stale.append(k)
        if stale and not (yield ("extend_ttl", (stale, ttl), False)):
            return stamps  # not extended (a store that cannot, or a failure): try again next time
        if len(alive) > 4096:  # a cache of what this process refreshed, not a record: keep it small
            alive.clear()
        for k, gen in stamps:
            alive[k] = (gen, INF if ttl is None else now + ttl)
        return stamps

    def _gen_life(self, keep: float | None) -> float | None:
        """How long a generation key must live for an entry kept ``keep`` seconds: at least that, and at
        least the region's longest default lifetime (memcached cannot extend a TTL, only set it)."""
        if keep is None:
            return None
        policy = self.policy
        if policy.ttl is None:
            return keep
        longest = max([policy.ttl, *(t for _, t in policy.ttl_rules)]) + (policy.stale_ttl or 0)
        return max(keep, longest)

    def bump(self, kind: str, names: Iterable[str]) -> int:
        """Advance the generation of tags / rules: every entry stamped with them becomes a miss."""
        count = 0
        for name in names:
            gen_key = self._gen_key(kind, name)
            if not self._advance(gen_key):
                continue
            count += 1
        self._clear_l1()
        return count

    def _advance(self, gen_key: str) -> bool:
        """Advance one generation in the shared store; on failure keep it for :meth:`_replay_pending`."""
        tier = self.l2
        if self._local:
            return tier.advance(gen_key)  # type: ignore[attr-defined,no-any-return]
        value = tier.call(None, tier.driver.increment, gen_key, 1, None)
        if value is None:
            self._pending_gens.add(gen_key)
            return False
        if value <= 1:
            # the generation was absent (expired, evicted, server restarted): no entry carries it, so
            # leave it absent (the next write seeds a unique value; no key without expiry is left)
            tier.call(False, tier.driver.forget, gen_key)
        self._pending_gens.discard(gen_key)
        return True

    def _drop_generations(self) -> None:
        """After the region's entries were deleted: delete the generation keys of its tags and rules
        too (nothing carries them any more; a write in flight reads as a miss), the locks kept."""
        tier = self.l2
        prefix = tier.gen_prefix  # type: ignore[attr-defined]
        found = tier.call(None, lambda: list(tier.driver.scan(escape_glob(prefix) + "*")))
        locks = prefix + "lock:"
        drop = [k for k in found or () if not k.startswith(locks)]
        if drop:
            tier.call(0, tier.driver.delete_many, drop)
        self._gen_alive.clear()

    def _replay_pending(self) -> None:
        """The store is back: apply the invalidations it missed."""
        for gen_key in list(self._pending_gens):
            if not self._advance(gen_key):
                return

    # -- writes ---------------------------------------------------------------------------
    def put(self, key: str, value: Any, ttl: Any = None) -> bool:
        """Store ``value``; ``ttl`` in seconds (or a ``timedelta``), default: the region's policy."""
        self.policy.check_key(key)
        return self.store(key, value, self.policy.ttl_for(key, ttl) if self._ttl_rules or ttl is not None
                           else self.policy.ttl, ())

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
        if self._fast and not tags:
            # private memory, no stamps, no L1: the plan would do exactly this
            if ttl is None:
                self._mem.put(key, (value, INF, None), None)
            else:
                stale = self.policy.stale_ttl
                self._mem.put(key, (value, self._now() + ttl, None), ttl + stale if stale else ttl)
            self.stats.sets += 1
            return True
        if not self.policy.enabled:
            return False
        return self._drive(self._store_plan(key, value, ttl, tags))  # type: ignore[no-any-return]

    async def astore(self, key: str, value: Any, ttl: float | None, tags: tuple[str, ...]) -> bool:
        if not self.policy.enabled:
            return False
        return await self._adrive(self._store_plan(key, value, ttl, tags))  # type: ignore[no-any-return]

    def _store_plan(self, key: str, value: Any, ttl: float | None, tags: tuple[str, ...],
                    kept: Any = None) -> Plan:
        policy = self.policy
        now = self._now()
        expires = now + ttl if ttl is not None else INF
        keep = None if ttl is None else ttl + (policy.stale_ttl or 0)
        stamps = yield from self._stamps_plan(key, tags, keep)
        if stamps is False:  # generations unreadable: the store is failing
            return False
        if kept:  # an increment: the stamps the entry had (still current: it was just read) stay
            have = {k for k, _ in kept}
            stamps = tuple(map(tuple, kept)) + tuple(s for s in stamps or () if s[0] not in have)
        tier = self.l2
        if self._local:
            tier.driver.put(key, (value, expires, stamps), keep)
            ok = True
        else:
            if type(value) is int and stamps is None and tier.raw_ints:
                # stored raw, so the server can increment it; a raw int carries no expiry of its own,
                # so the store keeps it for the fresh TTL only (never read back as fresh while stale)
                ok = bool((yield ("put", (tier.namespace + key, value, ttl), False)))
            else:
                ok = bool((yield ("put", (tier.namespace + key, (value, expires, stamps), keep), False)))
        if self.l1 is not None:
            self._l1_forget(key)  # advances the epoch: reads in flight do not fill L1 with the old value
            if ok and not tags:
                self._l1_fill(key, value, expires, now)
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
        return self._drive(self._put_many_plan(mapping, ttl))  # type: ignore[no-any-return]

    async def aput_many(self, mapping: Mapping[str, Any], ttl: Any = None) -> bool:
        """Async :meth:`put_many`."""
        if self._put_one_by_one():
            return bool(await self.off_loop(self.put_many, dict(mapping), ttl))
        return await self._adrive(self._put_many_plan(mapping, ttl))  # type: ignore[no-any-return]

    def _put_one_by_one(self) -> bool:
        return bool(self._local or self.l1 is not None or self.policy.pattern_rules or self._region_gen)

    def _put_many_plan(self, mapping: Mapping[str, Any], ttl: Any) -> Plan:
        policy = self.policy
        if not policy.enabled:
            return False
        ns = self.l2.namespace
        raw_ints = self.l2.raw_ints
        now = self._now()
        groups: dict[float | None, dict[str, Any]] = {}
        for key, value in mapping.items():
            policy.check_key(key)
            t = policy.ttl_for(key, ttl)
            payload = value if type(value) is int and raw_ints else (value, now + t if t is not None else INF, None)
            groups.setdefault(t, {})[ns + key] = payload
        ok = True
        for t, batch in groups.items():
            keep = None if t is None else t + (policy.stale_ttl or 0)
            done = bool((yield ("put_many", (batch, keep), False)))
            if done:
                self.stats.sets += len(batch)
            ok = ok and done
        return ok

    def increment(self, key: str, amount: int = 1) -> int | None:
        """Add ``amount`` (a missing key starts at 0); atomic in the process, and on the server for
        Redis and memcached. Returns the new value, or ``None`` when the store failed. A counter
        written through tags keeps them (``tags([...]).increment`` stamps it; a tag flush drops it)."""
        return self.count(key, amount, ())

    def count(self, key: str, amount: int, tags: tuple[str, ...]) -> int | None:
        self.policy.check_key(key)
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise CacheError(f"increment amount must be an int, not {type(amount).__name__}")
        try:
            return self._increment(key, amount, tags)
        finally:
            self._l1_forget(key)  # after the change in L2, so no read in flight can park the old value

    def _increment(self, key: str, amount: int, tags: tuple[str, ...] = ()) -> int | None:
        tier = self.l2
        if not self._local and tier.raw_ints and not tags and not self._gen_keys(key, ()):
            # unstamped counters live raw in the store: the server increments them atomically
            try:
                result = tier.driver.increment(tier.namespace + key, amount, None)
            except Exception as exc:
                return self._increment_refused(key, amount, exc)
            if tier.down:
                tier.recovered()
            self.stats.sets += 1
            return result  # type: ignore[no-any-return]
        return self._increment_locked(key, amount, tags)

    def _increment_refused(self, key: str, amount: int, exc: Exception) -> int | None:
        """The server would not increment ``key``: it holds an entry envelope (a value written
        through tags, say), which is incremented like a stamped counter, keeping its stamps; else
        the failure counts as one."""
        tier = self.l2
        held = tier.call(MISSING, tier.driver.get, tier.namespace + key)
        if type(held) in (tuple, list):
            return self._increment_locked(key, amount, ())
        if tier.down:
            return None  # the read failed too, and was counted
        return tier.failed(exc, None)

    def _increment_locked(self, key: str, amount: int, tags: tuple[str, ...]) -> int | None:
        with self._lock:
            # A generation-stamped counter (tags, memcached regions, declared patterns) or a signed one is
            # an envelope the server cannot increment: read-modify-write under a cross-process lock instead.
            if not self._locks.acquire_counter(key):
                self.stats.errors += 1
                return None
            try:
                return self._increment_entry(key, amount, tags)
            finally:
                self._locks.release_counter(key)

    def _increment_entry(self, key: str, amount: int, tags: tuple[str, ...] = ()) -> int | None:
        entry = self._fetch(key, tags)
        now = self._now()
        if entry is MISSING or entry[1] <= now:
            base, expires, kept = 0, INF, None
        else:
            base, expires, kept = entry
            if not isinstance(base, int) or isinstance(base, bool):
                raise CacheError(f"cannot increment {key!r}: it holds a {type(base).__name__}, not an int")
        new = base + amount
        if not self.policy.enabled:
            return None
        ttl = None if expires == INF else expires - now
        # the new value carries the stamps the old one had (its tags), plus those of ``tags``
        if not self._drive(self._store_plan(key, new, ttl, tags, kept)):
            return None
        return new  # type: ignore[no-any-return]

    def decrement(self, key: str, amount: int = 1) -> int | None:
        """Subtract ``amount`` (a missing key starts at 0)."""
        return self.increment(key, -amount)

    def forget(self, key: str) -> bool:
        """Remove ``key``; ``True`` if it was there."""
        tier = self.l2
        removed = bool(tier.call(False, tier.driver.forget, tier.key(key)))
        self._l1_forget(key)
        self.stats.deletes += 1
        return removed

    delete = forget

    def forget_many(self, keys: Iterable[str]) -> int:
        keys = list(keys)
        tier = self.l2
        n = int(tier.call(0, tier.driver.delete_many, [tier.namespace + k for k in keys]))
        if self.l1 is not None:
            self.drop_l1(keys)
            self._publish("forget_many", keys)
        self.stats.deletes += n
        return n

    def flush(self) -> bool:
        """Remove every entry of this region (and nothing else in a shared store)."""
        tier = self.l2
        try:
            if self._local:
                return tier.flush()  # type: ignore[attr-defined,no-any-return]
            if self._region_gen is not None:
                return self._advance(self._region_gen)
            keys = self._scan("*")
            if keys is None:
                return False
            self.forget_many(keys)
            self._drop_generations()
            return True
        finally:
            self._clear_l1()

    clear = flush

    def _clear_l1(self) -> None:
        if self.l1 is not None:
            self.drop_l1(None)
            self._publish("clear", None)

    # -- patterns -------------------------------------------------------------------------
    def keys(self, pattern: str = "*") -> list[str]:
        """Keys of this region matching a glob; raises UnsupportedOperation where the store cannot list.

        A failing store gives ``[]`` (the error counted), or raises with ``on_error = "raise"``."""
        found = self._scan(pattern)
        return [] if found is None else found

    def _scan(self, pattern: str) -> list[str] | None:
        """:meth:`keys`, or ``None`` when the store failed (counted, logged once per outage)."""
        tier = self.l2
        ns = tier.namespace
        # the namespace is literal: a region (or prefix) named ``a*`` must not list region ``ab``
        glob = escape_glob(ns) + pattern
        found = tier.call(None, lambda: list(tier.driver.scan(glob)))
        if found is None:
            return None
        cut = len(ns)
        # internal keys live outside ``prefix:region:`` (``prefix:__gen__:...``): no user key is filtered
        return [k[cut:] for k in found]

    # -- remember -------------------------------------------------------------------------
    def remember(self, key: str, ttl: Any, callback: Callable[[], Any], *, tags: tuple[str, ...] = ()) -> Any:
        """The cached value, or ``callback()`` stored for ``ttl`` and returned.

        Concurrent callers for one key run the callback once (threads and asyncio tasks). An async
        callback gives an awaitable; the resolved value, never a coroutine, is cached.
        """
        if is_async_callable(callback):
            return self.aremember(key, ttl, callback, tags=tags)
        if self._fast and not tags:
            value = self._fast_hit(key)
            if value is not MISSING:
                return value
        value = self.lookup(key, tags, allow_stale=True)
        if type(value) is _Stale:
            self._refresh_in_background(key, ttl, callback, tags)
            return value.value
        if value is not MISSING:
            return value
        ttl_s = self.policy.ttl_for(key, ttl)

        def load() -> Any:
            again = self._fetch(key, tags)
            if again is not MISSING and again[1] > self._now():
                return again[0]
            started = time.perf_counter()
            result = callback()
            if inspect.isawaitable(result):
                return self._finish_async(key, ttl_s, result, tags)
            self.stats.loads += 1
            self.stats.load_time += time.perf_counter() - started
            self.policy.check_key(key)
            self.store(key, result, ttl_s, tags)
            return result

        return self._singleflight.do(self._flight_key(key), lambda: self._locks.load(key, load, self._fresh))

    def remember_call(self, key: str, ttl: Any, fn: Callable[..., Any], args: tuple[Any, ...],
                      kwargs: dict[str, Any]) -> Any:
        """``remember(key, ttl, lambda: fn(*args, **kwargs))`` that builds the loader only on a miss
        (what ``@cached`` calls: an in-process hit costs no closure)."""
        if self._fast:
            value = self._fast_hit(key)
            if value is not MISSING:
                return value
        return self.remember(key, ttl, lambda: fn(*args, **kwargs))

    async def aremember_call(self, key: str, ttl: Any, fn: Callable[..., Any], args: tuple[Any, ...],
                             kwargs: dict[str, Any]) -> Any:
        """The async twin of :meth:`remember_call` (``@async_cached``)."""
        if self._fast:
            value = self._fast_hit(key)
            if value is not MISSING:
                return value
        return await self.aremember(key, ttl, lambda: fn(*args, **kwargs))

    def remember_forever(self, key: str, callback: Callable[[], Any]) -> Any:
        """:meth:`remember` without expiry (single flight and the cross-process lock included)."""
        return self.remember(key, FOREVER, callback)

    def _fresh(self, key: str) -> Any:
        """What another process stored meanwhile (the loader lock polls it), or MISSING."""
        entry = self._fetch(key, ())
        return entry[0] if entry is not MISSING and entry[1] > self._now() else MISSING

    async def _afresh(self, key: str) -> Any:
        return await asyncio.to_thread(self._fresh, key)

    def _flight_key(self, key: str) -> str:
        return f"{self.name}\x00{key}"

    def _finish_async(self, key: str, ttl: float | None, awaitable: Awaitable[Any], tags: tuple[str, ...]) -> Any:
        async def finish() -> Any:
            value = await awaitable
            self.stats.loads += 1
            self.store(key, value, ttl, tags)
            return value

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return finish()
        return asyncio.ensure_future(finish())  # a task: awaitable by every waiting caller

    def _refresh_in_background(self, key: str, ttl: Any, callback: Callable[[], Any], tags: tuple[str, ...]) -> None:
        with self._lock:
            if key in self._refreshing:
                return
            self._refreshing.add(key)

        def refresh() -> None:
            try:
                # with ``lock = true``, one process refreshes; the others keep serving the stale value
                release = self._locks.try_acquire(key)
                if release is None:
                    return
                try:
                    self.store(key, callback(), self.policy.ttl_for(key, ttl), tags)
                    self.stats.loads += 1
                finally:
                    release()
            except Exception:
                self.stats.errors += 1
            finally:
                with self._lock:
                    self._refreshing.discard(key)

        threading.Thread(target=refresh, name=f"cachekit-refresh-{key}", daemon=True).start()

    # -- async twins ----------------------------------------------------------------------
    async def aremember(self, key: str, ttl: Any, callback: Callable[[], Any], *,
                        tags: tuple[str, ...] = ()) -> Any:
        """Async ``remember``: ``callback`` may be sync or async; the loader runs once per key."""
        value = await self.alookup(key, tags, allow_stale=True)
        if type(value) is _Stale:
            self._arefresh(key, ttl, callback, tags)
            return value.value
        if value is not MISSING:
            return value
        ttl_s = self.policy.ttl_for(key, ttl)

        async def load() -> Any:
            again = await self._afetch(key, tags)
            if again is not MISSING and again[1] > self._now():
                return again[0]
            started = time.perf_counter()
            result = callback()
            if inspect.isawaitable(result):
                result = await result
            self.stats.loads += 1
            self.stats.load_time += time.perf_counter() - started
            await self.astore(key, result, ttl_s, tags)
            return result

        return await self._singleflight.ado(self._flight_key(key), lambda: self._locks.aload(key, load, self._afresh))

    def _arefresh(self, key: str, ttl: Any, callback: Callable[[], Any], tags: tuple[str, ...]) -> None:
        if key in self._refreshing:
            return
        self._refreshing.add(key)

        async def refresh() -> None:
            try:
                release = await self.off_loop(self._locks.try_acquire, key)  # see _refresh_in_background
                if release is None:
                    return
                try:
                    result = callback()
                    if inspect.isawaitable(result):
                        result = await result
                    await self.astore(key, result, self.policy.ttl_for(key, ttl), tags)
                    self.stats.loads += 1
                finally:
                    await self.off_loop(release)
            except Exception:
                self.stats.errors += 1
            finally:
                self._refreshing.discard(key)

        self._spawn(refresh())

    async def off_loop(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._local:
            return fn(*args, **kwargs)
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def aget(self, key: str, default: Any = None) -> Any:
        """Async :meth:`get` (native asyncio on Redis; a worker thread on memcached and file)."""
        if self._fast:
            return self.get(key, default)
        value = await self.alookup(key, ())
        return default if value is MISSING else value

    async def ahas(self, key: str) -> bool:
        return (await self.alookup(key, ())) is not MISSING

    async def aput(self, key: str, value: Any, ttl: Any = None) -> bool:
        self.policy.check_key(key)
        return await self.astore(key, value, self.policy.ttl_for(key, ttl), ())

    async def aforever(self, key: str, value: Any) -> bool:
        self.policy.check_key(key)
        return await self.astore(key, value, None, ())

    async def aforget(self, key: str) -> bool:
        tier = self.l2
        if self._local:
            return self.forget(key)
        removed = bool(await tier.acall(False, tier.driver.aforget, tier.namespace + key))
        self._l1_forget(key)
        self.stats.deletes += 1
        return removed

    async def aflush(self) -> bool:
        return bool(await self.off_loop(self.flush))

    async def aget_many(self, keys: Iterable[str], default: Any = None) -> dict[str, Any]:
        keys = list(keys)
        found = await self.alookup_many(keys, ())
        return {k: (default if found[k] is MISSING else found[k]) for k in keys}

    async def aincrement(self, key: str, amount: int = 1) -> int | None:
        tier = self.l2
        if self._local or self.l1 is not None or not tier.raw_ints or self._gen_keys(key, ()):
            return await self.off_loop(self.increment, key, amount)  # type: ignore[no-any-return]
        self.policy.check_key(key)
        try:
            result = await tier.driver.aincrement(tier.namespace + key, amount, None)
        except Exception as exc:  # an envelope (a tagged value) or a failure: see _increment_refused
            return await self.off_loop(self._increment_refused, key, amount, exc)  # type: ignore[no-any-return]
        if tier.down:
            tier.recovered()
        self.stats.sets += 1
        return result  # type: ignore[no-any-return]

    async def adecrement(self, key: str, amount: int = 1) -> int | None:
        return await self.aincrement(key, -amount)

    # -- tags -----------------------------------------------------------------------------
    def tags(self, names: Iterable[str] | str, *more: str) -> TaggedCache:
        """A view whose writes carry ``names``; ``.flush()`` drops entries carrying ANY of them."""
        names = [names] if isinstance(names, str) else list(names)
        return TaggedCache(self, tuple(names) + more)

    def flush_tags(self, names: tuple[str, ...]) -> bool:
        """Invalidate every entry carrying any of ``names`` (``False``: the store is down; the
        invalidation is replayed when it is back)."""
        done = self.bump("tag", names)
        self._broadcast.notify("invalidate", "", {"pattern": None, "tags": list(names), "regions": [self.name]})
        return done == len(names)

    # -- misc -----------------------------------------------------------------------------
    def set_ttl(self, ttl: Any) -> None:
        """Change the default TTL of this region live (and in ``runtime.config``)."""
        ttl_s = normalize_ttl(ttl)
        self._update_region(self.name, ttl=ttl_s)

    def __repr__(self) -> str:
        tiers = f"{self.l1.provider} -> {self.l2.provider}" if self.l1 else self.l2.provider
        return f"<Region {self.name!r} on {tiers}, ttl={self.policy.ttl}>"


class _Stale:
    """A value past its fresh TTL but inside ``stale_ttl``: served while one caller refreshes."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value
