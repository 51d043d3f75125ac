"""Tiers: one driver as a region uses it, with its namespace and error policy.

Two kinds. A :class:`LocalTier` is an in-process memory store owned by one region: values are kept
by reference, keys carry no namespace, and generations live in a local map. A :class:`SharedTier`
is a store other regions and processes share: every key lives under ``prefix:region:``, values are
serialized by the driver, and generations are counters in the store itself. Each kind owns its
namespacing, so a region never builds a stored key by hand.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ..providers.base import MISSING, CacheDriver
from ..providers.memory import MemoryDriver
from ..serializers import TamperedPayloadError
from ..stats import Recorder
from .breaker import Breaker
from .direct import DirectPath
from .error_policy import ErrorPolicy
from .generations import LocalGenerations
from .locks import NoLocks, RegionLocks
from .plans import ADD, EXTEND_TTL, GET, GET_MANY, PUT, PUT_THEN_GET, Plan, adrive, as_entry, drive
from .policy import INF, Policy, escape_glob

__all__ = ["LocalTier", "SharedTier", "Tier"]

T = TypeVar("T")


class Tier(ErrorPolicy):
    """What both kinds share: the driver, its namespace, and the provider's error policy
    (``error_policy.py``: ``call`` runs a driver operation under it)."""

    __slots__ = ("breaker", "budget", "down", "driver", "namespace", "on_error", "provider", "raw_ints", "stats")

    #: stores whose keys a region can list (``keys()``, pattern invalidation, flush by deletion)
    can_scan = True
    #: a store reached over the network: a region call on it runs under one deadline (``deadline.py``)
    remote = False

    def __init__(self, driver: CacheDriver, *, provider: str, namespace: str, on_error: str,
                 stats: Recorder) -> None:
        self.driver = driver
        self.provider = provider
        self.namespace = namespace
        self.on_error = on_error
        self.stats = stats
        self.down = False
        #: seconds of store calls one region call may spend on this tier (``[cache] call_timeout``)
        self.budget = 1.1
        #: values may be stored as raw integers (so the server increments them)
        self.raw_ints = True
        #: the provider's circuit breaker (shared by every tier on its driver), when configured
        self.breaker: Breaker | None = None

    def key(self, key: str) -> str:
        """The key as stored."""
        return self.namespace + key

    def scan(self, pattern: str) -> list[str] | None:
        """The region's keys matching ``pattern``, or ``None`` when the store failed."""
        ns = self.namespace
        # the namespace is literal: a region (or prefix) named ``a*`` must not list region ``ab``
        found = self.call(None, lambda: list(self.driver.scan(escape_glob(ns) + pattern)))
        if found is None:
            return None
        cut = len(ns)
        # internal keys live outside ``prefix:region:`` (``prefix:__gen__:...``): no user key is filtered
        return [k[cut:] for k in found]

    async def off_loop(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking call in a worker thread (an in-process tier runs it inline)."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    # -- what each kind answers in its own way ----------------------------------------------
    def gen_key(self, kind: str, name: str) -> str:
        """The key of a generation (``kind`` "tag", "rule" or "region")."""
        raise NotImplementedError

    def locks(self, policy: Policy) -> NoLocks:
        """The loader and counter locks of a region on this tier."""
        raise NotImplementedError

    def fetch(self, key: str, gen_keys: list[str]) -> Any:
        """The entry of ``key`` with its generation stamps checked, or MISSING."""
        raise NotImplementedError

    async def afetch(self, key: str, gen_keys: list[str]) -> Any:
        raise NotImplementedError

    def stamps_plan(self, gen_keys: list[str], life: float | None) -> Plan:
        """The current generations of ``gen_keys`` for a new entry (``False``: the store failed)."""
        raise NotImplementedError

    def put_plan(self, key: str, value: Any, expires: float, stamps: Any, ttl: float | None,
                 keep: float | None) -> Plan:
        """Store one entry; ``True`` when stored."""
        raise NotImplementedError

    def advance(self, gen_key: str) -> bool:
        """Invalidate every entry stamped with ``gen_key``; ``False`` when the store failed."""
        raise NotImplementedError

    def forget(self, key: str) -> bool:
        raise NotImplementedError

    async def aforget(self, key: str) -> bool:
        raise NotImplementedError

    @property
    def evictions(self) -> int:
        """Entries this tier's own store evicted (only an in-process store counts its own)."""
        return 0

    def reset_evictions(self) -> None:
        pass


class LocalTier(Tier):
    """An in-process memory store owned by one region alone (an L2 ``memory`` provider, or an L1)."""

    __slots__ = ("generations", "memory")

    def __init__(self, driver: MemoryDriver, *, provider: str, on_error: str, stats: Recorder) -> None:
        super().__init__(driver, provider=provider, namespace="", on_error=on_error, stats=stats)
        self.memory = driver
        #: tags, pattern rules: a bounded map, dropped with the region's data on flush
        self.generations = LocalGenerations()

    def gen_key(self, kind: str, name: str) -> str:
        return f"{kind}:{name}"

    def locks(self, policy: Policy) -> NoLocks:
        """A region in process memory needs no cross-process lock: its single flight and its own
        lock cover every caller."""
        return NoLocks()

    def lock_key(self, key: str) -> str:
        """An atomic lock's key (the memory driver keeps locks apart from the entries)."""
        return "__lock__:" + key

    def fetch(self, key: str, gen_keys: list[str]) -> Any:
        """The entry for ``key`` with its stamps checked against the local generations, or MISSING
        (``gen_keys`` is for a shared store, which reads them with the entry)."""
        entry = self.memory.get_cell(key)  # (value, expires_at, stamps, the store's deadline)
        if entry is MISSING:
            return MISSING
        stamps = entry[2]
        if stamps is not None:
            gens = self.generations
            for gen_key, gen in stamps:
                if gens.get(gen_key) != gen:
                    return MISSING
        return entry

    async def afetch(self, key: str, gen_keys: list[str]) -> Any:
        return self.fetch(key, gen_keys)

    def stamps_plan(self, gen_keys: list[str], life: float | None) -> Plan:
        """The stamps of a new entry (no I/O: a plan only in form)."""
        gens = self.generations
        return tuple((k, gens.stamp(k)) for k in gen_keys)
        yield  # pragma: no cover  (makes this a generator)

    def put_plan(self, key: str, value: Any, expires: float, stamps: Any, ttl: float | None,
                 keep: float | None) -> Plan:
        """Store the entry by reference (no I/O: a plan only in form)."""
        memory = self.memory
        memory.put_cell(key, (value, expires, stamps, INF if keep is None else memory.clock.now() + keep))
        return True
        yield  # pragma: no cover  (makes this a generator)

    def advance(self, gen_key: str) -> bool:
        self.generations.advance(gen_key)
        return True

    def flush(self) -> bool:
        self.generations.clear()
        return self.driver.flush()

    def forget(self, key: str) -> bool:
        return self.memory.forget(key)

    async def aforget(self, key: str) -> bool:
        return self.memory.forget(key)

    async def off_loop(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return fn(*args, **kwargs)  # nothing in process memory blocks

    def resize(self, max_size: int | None) -> None:
        self.memory.resize(max_size)

    @property
    def evictions(self) -> int:
        return self.memory.evictions

    def reset_evictions(self) -> None:
        self.memory.evictions = 0


class SharedTier(DirectPath, Tier):
    """A store shared with other regions and processes: keys under ``prefix:region:``, generations
    under ``prefix:__gen__:region:``, loader locks under ``prefix:__lock__:region:``."""

    __slots__ = ("alive", "gen_prefix", "lock_prefix", "now", "pending")

    def __init__(self, driver: CacheDriver, *, provider: str, prefix: str, region: str, on_error: str,
                 stats: Recorder, now: Callable[[], float]) -> None:
        super().__init__(driver, provider=provider, namespace=f"{prefix}:{region}:", on_error=on_error,
                         stats=stats)
        self.now = now
        self.gen_prefix = f"{prefix}:__gen__:{region}:"
        self.lock_prefix = f"{prefix}:__lock__:{region}:"
        # not on a store that signs its payloads: a raw integer carries no signature, so there it is
        # read only from generation keys
        self.raw_ints = not driver.signed
        #: generations (tags, rules, the region) whose advance failed while the store was down:
        #: entries stamped with them read as misses until the advance is replayed on recovery
        self.pending: set[str] = set()
        #: generation key -> (value, until when this process made it live): skips redundant refreshes, and
        #: stamps a write made in one round trip (put_stamped_plan)
        self.alive: dict[str, tuple[int, float]] = {}

    remote = True

    @property
    def can_scan(self) -> bool:  # type: ignore[override]
        return bool(self.driver.can_scan)

    def gen_key(self, kind: str, name: str) -> str:
        return f"{self.gen_prefix}{kind}:{name}"

    def locks(self, policy: Policy) -> RegionLocks:
        return RegionLocks(self, enabled=policy.lock, timeout=policy.lock_timeout)

    def lock_key(self, key: str) -> str:
        """The cross-process loader lock of ``key``."""
        return self.lock_prefix + key

    def counter_lock_key(self, key: str) -> str:
        """The lock of a read-modify-write increment; under the generation prefix, which a region
        flush scans (and spares: see ``Generations.drop``)."""
        return f"{self.gen_prefix}lock:{key}"

    def recovered(self) -> None:
        """The store answers again: apply the invalidations it missed."""
        super().recovered()
        for gen_key in list(self.pending):
            if not self.advance(gen_key):
                return

    def forget(self, key: str) -> bool:
        return bool(self.call(False, self.driver.forget, self.key(key)))

    async def aforget(self, key: str) -> bool:
        return bool(await self.acall(False, self.driver.aforget, self.key(key)))

    # -- reads -------------------------------------------------------------------------------
    def fetch(self, key: str, gen_keys: list[str]) -> Any:
        """The entry for ``key`` with its stamps checked, or MISSING; ``gen_keys``: the generations
        it may carry, read in the same round trip."""
        return drive(self, self.fetch_plan(key, gen_keys))

    async def afetch(self, key: str, gen_keys: list[str]) -> Any:
        return await adrive(self, self.fetch_plan(key, gen_keys))

    def fetch_plan(self, key: str, gen_keys: list[str]) -> Plan:
        full = self.key(key)
        # generations pending when the read starts: the call that finds the store back replays them
        # (recovered) after its own answer was read, so that answer is checked against these
        pending = self.pending_now()
        if gen_keys:
            got = yield (GET_MANY, ([full, *gen_keys],), None)
            if got is None:
                return MISSING
            entry = self.entry(got.get(full, MISSING))
        else:
            got = {}
            entry = self.entry((yield (GET, (full,), MISSING)))
        if entry is MISSING or not entry[2]:
            return entry  # no stamps: no generation to check (current_plan would answer True)
        current = yield from self.current_plan(entry[2], got, pending)
        return entry if current else MISSING

    def pending_now(self) -> frozenset[str] | None:
        return frozenset(self.pending) if self.pending else None

    def entry(self, obj: Any) -> Any:
        """:func:`as_entry`, refusing a raw integer where the store signs payloads (counted, a miss)."""
        if type(obj) is int and not self.raw_ints:
            # unsigned, so anyone who can write to the store could have planted it over a signed entry
            return self.failed(TamperedPayloadError(
                "unsigned integer payload rejected: this store signs its payloads and keeps counters "
                "in signed entries"), MISSING)
        return as_entry(obj)

    def current_plan(self, stamps: Any, known: dict[str, Any], pending: frozenset[str] | None = None) -> Plan:
        """Whether ``stamps`` are the current generations (``known``: those already read)."""
        if not stamps:
            return True
        pending = pending or self.pending
        if pending and any(k in pending for k, _ in stamps):
            return False  # invalidated during an outage, not yet replayed in the store
        unknown = [k for k, _ in stamps if k not in known]
        if unknown:
            more = yield (GET_MANY, (unknown,), None)
            if more is None:
                return False
            known = {**known, **more}
        return all(known.get(k, MISSING) == gen for k, gen in stamps)

    # -- writes ------------------------------------------------------------------------------
    def put_plan(self, key: str, value: Any, expires: float, stamps: Any, ttl: float | None,
                 keep: float | None) -> Plan:
        if type(value) is int and stamps is None and self.raw_ints:
            # stored raw, so the server can increment it; a raw int carries no expiry of its own,
            # so the store keeps it for the fresh TTL only (never read back as fresh while stale)
            return bool((yield (PUT, (self.key(key), value, ttl), False)))
        return bool((yield (PUT, (self.key(key), (value, expires, stamps), keep), False)))

    # -- generations -------------------------------------------------------------------------
    def stamps_plan(self, gen_keys: list[str], life: float | None) -> Plan:
        """The stamps a new entry carries: a tuple, or ``False`` (store failing).

        ``life`` is how long the generation keys must live (``None``: forever); they are made to
        live twice that (refreshed on use), so they expire once no entry can carry them."""
        got = yield (GET_MANY, (gen_keys,), None)
        if got is None:
            return False
        # twice the needed life, so that the next writes of the next ``life`` seconds skip the refresh
        ttl = None if life is None else 2 * life
        absent = [k for k in gen_keys if not isinstance(got.get(k), int)]
        created = set()
        if absent:
            # A fresh (or evicted) generation starts at a unique value, never at one an old entry has.
            seed = time.time_ns() // 1000
            for k in absent:
                if (yield (ADD, (k, seed, ttl), False)):
                    created.add(k)
            more = yield (GET_MANY, (absent,), None)
            if more is None:
                return False
            got.update(more)
        stamps = tuple((k, got[k]) for k in gen_keys)
        alive = self.alive
        now = self.now()
        needed = INF if life is None else now + life
        stale = []
        for k, gen in stamps:
            known = alive.get(k)
            if k not in created and (known is None or known[0] != gen or known[1] < needed):
                stale.append(k)
        if stale and not (yield (EXTEND_TTL, (stale, ttl), False)):
            return stamps  # not extended (a store that cannot, or a failure): try again next time
        if len(alive) > 4096:  # a cache of what this process refreshed, not a record: keep it small
            alive.clear()
        for k, gen in stamps:
            alive[k] = (gen, INF if ttl is None else now + ttl)
        return stamps

    def known_stamps(self, gen_keys: list[str], life: float | None) -> tuple[tuple[str, int], ...] | None:
        """The stamps of a write made in one round trip (:meth:`put_stamped_plan`, ``plans.write_one``):
        the generations as this process last saw them (``alive``, as :meth:`stamps_plan` left it), or
        ``None`` when one is unknown or due for a refresh, or the driver has no one-trip ``put_then_get``."""
        if not self.driver.fused_put_get:
            return None
        alive, needed = self.alive, (INF if life is None else self.now() + life)
        stamps = []
        for k in gen_keys:
            known = alive.get(k)
            if known is None or known[1] < needed:
                return None  # not seen yet, or due for a refresh: stamps_plan reads and extends it
            stamps.append((k, known[0]))
        return tuple(stamps)

    def stamps_held(self, stamps: tuple[tuple[str, int], ...], gens: dict[str, Any]) -> bool:
        """Whether the generations read back right after a write stamped with ``stamps`` still hold them:
        then no advance came between the values seen and the write (a generation only moves forward, and
        one re-created after an eviction starts at a new unique value), so the entry is valid. One that
        moved is forgotten: the entry just written is already a miss, to be written again the usual way."""
        moved = [k for k, gen in stamps if gens.get(k, MISSING) != gen]
        for k in moved:
            self.alive.pop(k, None)
        return not moved

    def put_stamped_plan(self, key: str, value: Any, expires: float, gen_keys: list[str], life: float | None,
                         keep: float | None) -> Plan:
        """Store an entry stamped with ``gen_keys`` in one round trip (:meth:`known_stamps`, then
        ``put_then_get`` and :meth:`stamps_held`): ``True``/``False``, or ``None`` when the caller must
        write it the usual way (:meth:`stamps_plan` then :meth:`put_plan`)."""
        stamps = self.known_stamps(gen_keys, life)
        if stamps is None:
            return None
        got = yield (PUT_THEN_GET, (self.namespace + key, (value, expires, stamps), keep, gen_keys), None)
        if got is None or not got[0]:
            return False  # the store failed, or refused the write
        return True if self.stamps_held(stamps, got[1]) else None

    def advance(self, gen_key: str) -> bool:
        """Advance one generation in the store; on failure keep it for :meth:`recovered`."""
        self.alive.pop(gen_key, None)  # the value this process stamps with is about to be old
        value = self.call(None, self.driver.increment, gen_key, 1, None)
        if value is None:
            self.pending.add(gen_key)
            return False
        if value <= 1:
            # the generation was absent (expired, evicted, server restarted): no entry carries it, so
            # leave it absent (the next write seeds a unique value; no key without expiry is left)
            self.call(False, self.driver.forget, gen_key)
        self.pending.discard(gen_key)
        return True

    def drop_generations(self) -> None:
        """After the region's entries were deleted: delete the generation keys of its tags and rules
        too (nothing carries them any more; a write in flight reads as a miss), the counter locks kept."""
        prefix = self.gen_prefix
        found = self.call(None, lambda: list(self.driver.scan(escape_glob(prefix) + "*")))
        locks = prefix + "lock:"
        drop = [k for k in found or () if not k.startswith(locks)]
        if drop:
            self.call(0, self.driver.delete_many, drop)
        self.alive.clear()
