"""Shared-store I/O as plans: one logic, two I/O.

A plan is a generator that yields driver operations ``(op, args, fallback)`` and receives their
results. :func:`drive` runs it with the sync driver, :func:`adrive` with the driver's async twins
(native asyncio on Redis, a worker thread elsewhere), each call under the tier's error policy
(``fallback`` is what a failed call answers). An operation is an :class:`Op`: the driver method
and its async twin as references, so a plan never names a method by string.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Mapping
from itertools import repeat
from operator import gt, is_, itemgetter
from time import perf_counter
from typing import TYPE_CHECKING, Any

from ..providers.base import CALL, MISSING, CacheDriver
from .deadline import Call
from .generations import generation_life
from .policy import INF

if TYPE_CHECKING:
    from ..stats import Recorder
    from .policy import Policy
    from .tier import SharedTier, Tier

__all__ = ["ADD", "EXTEND_TTL", "GET", "GET_MANY", "INCREMENT", "PUT", "PUT_MANY", "PUT_THEN_GET", "Op", "Plan",
           "adrive", "as_entry", "drive", "drive_on", "each_plan", "many_plan", "put_many_plan", "read_many",
           "read_one", "settle_many", "write_one"]


class Op:
    """A driver operation a plan can yield: its sync method and its async twin, as references."""

    __slots__ = ("asynchronous", "name", "synchronous")

    def __init__(self, name: str, synchronous: Callable[[CacheDriver], Callable[..., Any]],
                 asynchronous: Callable[[CacheDriver], Callable[..., Awaitable[Any]]]) -> None:
        self.name = name
        self.synchronous = synchronous
        self.asynchronous = asynchronous

    def __repr__(self) -> str:
        return f"<Op {self.name}>"


GET = Op("get", lambda d: d.get, lambda d: d.aget)
GET_MANY = Op("get_many", lambda d: d.get_many, lambda d: d.aget_many)
PUT = Op("put", lambda d: d.put, lambda d: d.aput)
PUT_MANY = Op("put_many", lambda d: d.put_many, lambda d: d.aput_many)
ADD = Op("add", lambda d: d.add, lambda d: d.aadd)
INCREMENT = Op("increment", lambda d: d.increment, lambda d: d.aincrement)
EXTEND_TTL = Op("extend_ttl", lambda d: d.extend_ttl, lambda d: d.aextend_ttl)
PUT_THEN_GET = Op("put_then_get", lambda d: d.put_then_get, lambda d: d.aput_then_get)

#: a generator yielding driver operations ``(op, args, fallback)`` and returning a result
Plan = Generator[tuple[Op, tuple[Any, ...], Any], Any, Any]


def drive(tier: Tier, plan: Plan, op: Any = None) -> Any:
    """Run ``plan`` with the tier's sync driver (``op``: the operation it yielded first, if taken)."""
    driver = tier.driver
    try:
        if op is None:
            op = next(plan)
        while True:
            op = plan.send(tier.call(op[2], op[0].synchronous(driver), *op[1]))
    except StopIteration as done:
        return done.value


async def adrive(tier: Tier, plan: Plan) -> Any:
    """Run ``plan`` with the tier's async driver methods."""
    driver = tier.driver
    try:
        op = next(plan)
        while True:
            op = plan.send(await tier.acall(op[2], op[0].asynchronous(driver), *op[1]))
    except StopIteration as done:
        return done.value


def as_entry(obj: Any) -> Any:
    """Normalise what a driver returned into an entry tuple ``(value, expires_at, stamps)``, or MISSING."""
    t = type(obj)
    if t is tuple:
        return obj if len(obj) == 3 else MISSING
    if t is list and len(obj) == 3:  # JSON/msgpack round trip
        value, expires, stamps = obj
        return (value, INF if expires is None else expires, tuple(map(tuple, stamps)) if stamps else None)
    if t is int:  # a raw counter, stored natively by the server
        return (obj, INF, None)
    return MISSING


def many_plan(tier: SharedTier, keys: list[str], gen_keys: list[str], now: Callable[[], float],
              stats: Recorder) -> Plan:
    """One multi-get for every key and every generation they depend on; hits and misses counted.
    ``None`` when the store answered with an unreadable payload (the caller goes key by key)."""
    namespace = tier.namespace  # tier.key(k), without a call per key
    fulls = [namespace + k for k in keys]
    pending = tier.pending_now()  # see SharedTier.fetch_plan
    got = yield (GET_MANY, (fulls + gen_keys,), None)
    if got is None:
        if not tier.down:
            return None
        stats.misses += len(keys)
        return dict.fromkeys(keys, MISSING)
    return (yield from settle_many(tier, keys, fulls, got, now(), stats, pending))


_TUPLES = {tuple}
_THREE = {3}
_VALUE, _EXPIRES, _STAMPS = itemgetter(0), itemgetter(1), itemgetter(2)


def settle_many(tier: SharedTier, keys: list[str], fulls: list[str], got: dict[str, Any], t: float,
                stats: Recorder, pending: frozenset[str] | None, absent: Any = MISSING,
                entries: list[Any] | None = None) -> Plan:
    """``{key: value}`` from a multi-get's answer ``got`` (by stored key, ``fulls``), or its ``entries``
    in the order of ``fulls``, ``absent`` for a miss, at time ``t``; hits and misses counted. A plan
    only for entries with stamps whose generations ``got`` lacks."""
    if entries is None:
        entries = list(map(got.get, fulls, repeat(MISSING)))
    try:  # the usual answer, checked in C loops: every entry a fresh envelope without stamps
        if set(map(type, entries)) == _TUPLES and set(map(len, entries)) == _THREE and \
                all(map(is_, map(_STAMPS, entries), repeat(None))) and all(map(gt, map(_EXPIRES, entries), repeat(t))):
            stats.hits += len(keys)
            return dict(zip(keys, map(_VALUE, entries), strict=True))
    except TypeError:  # an expiry that does not compare with a time: the loop below answers as it does
        pass
    out: dict[str, Any] = {}
    hits = 0
    waiting = pending or tier.pending  # generations invalidated during an outage (see current_plan)
    for k, entry in zip(keys, entries, strict=True):
        if type(entry) is tuple and len(entry) == 3 and entry[1] > t:
            stamps = entry[2]
            if stamps is None:
                hits += 1  # the usual answer: a fresh envelope without stamps, no generation to check
                out[k] = entry[0]
                continue
            if not waiting:  # stamps whose generations were read with the entry: current_plan, inline
                for gen_key, gen in stamps:
                    if got.get(gen_key, MISSING) != gen:
                        break  # not read (current_plan reads it), or moved (a miss)
                else:
                    hits += 1
                    out[k] = entry[0]
                    continue
        if type(entry) is not tuple or len(entry) != 3:  # an envelope passes as is (tier.entry would)
            entry = tier.entry(entry)
        # generations are checked only for an entry that carries stamps (current_plan: True without)
        if entry is not MISSING and entry[1] > t and (
                not entry[2] or (yield from tier.current_plan(entry[2], got, pending))):
            hits += 1
            out[k] = entry[0]
        else:
            out[k] = absent
    stats.hits += hits
    stats.misses += len(keys) - hits
    return out


def read_one(tier: SharedTier, key: str, gen_keys: list[str]) -> Any:
    """The fresh value of ``key`` or MISSING, counted as a hit or a miss: a region's read on the direct
    path (``Region._direct_read``) of a store flushed by generation, in one store call (``call_once``):
    a multi-get of the entry and ``gen_keys`` (the generations every entry of the region carries, never
    empty: without them the region reads with ``DirectPath.read``), timed by a ``perf_counter`` pair.
    Stamps not read with it (an entry written with tags) are read after, under the same deadline
    (:func:`drive_on`)."""
    pending = frozenset(tier.pending) if tier.pending else None  # see SharedTier.fetch_plan
    stats = tier.stats
    started = perf_counter()
    full = tier.namespace + key
    try:
        got = tier.call_once(None, tier.driver.get_many, [full, *gen_keys]) or {}
        entry = got.get(full, MISSING)
        if type(entry) is not tuple or len(entry) != 3:  # an envelope passes as is (tier.entry would)
            entry = tier.entry(entry)
        if entry is not MISSING and entry[2] and \
                not drive_on(tier, tier.current_plan(entry[2], got, pending), started):
            entry = MISSING
    finally:  # timed as Recorder.timed would, without its wrapper frame
        if stats.timing:
            stats.observe("get", perf_counter() - started)
    if entry is MISSING or entry[1] <= tier.now():
        stats.misses += 1
        return MISSING
    stats.hits += 1
    return entry[0]


def write_one(tier: SharedTier, key: str, value: Any, ttl: float | None, policy: Policy, gen_keys: list[str]) -> bool:
    """``put`` on a store flushed by generation (``Region._direct_put``): the entry stamped with
    ``gen_keys`` as this process last saw them, written and checked in one round trip (``call_once``,
    ``SharedTier.known_stamps``, ``stamps_held``); when they are unknown or one moved, written the usual
    way (``stamps_plan``, ``put_plan``) under the same deadline (:func:`drive_on`). Counted and timed as
    ``Region.store`` counts and times a write. The first round trip is ``SharedTier.put_stamped_plan``
    written out with ``call_once``: driving that plan here measured 3 us more CPU per put (a deadline per
    operation and the generator), a tenth of a loopback memcached round trip."""
    expires, keep = (INF, None) if ttl is None else (tier.now() + ttl, ttl + (policy.stale_ttl or 0))
    life = generation_life(policy, keep)
    stats = tier.stats
    started = perf_counter()
    try:
        ok = None
        stamps = tier.known_stamps(gen_keys, life)
        if stamps is not None:
            got = tier.call_once(None, tier.driver.put_then_get, tier.namespace + key, (value, expires, stamps),
                                 keep, gen_keys)
            if got is None or not got[0]:
                ok = False  # the store failed, or refused the write
            elif tier.stamps_held(stamps, got[1]):
                ok = True
        if ok is None:  # the generations unknown yet, or one moved
            ok = drive_on(tier, _stamped_put_plan(tier, key, value, expires, gen_keys, life, ttl, keep), started)
    finally:
        if stats.timing:
            stats.observe("put", perf_counter() - started)
    if ok:
        stats.sets += 1
        return True
    return False


def _stamped_put_plan(tier: SharedTier, key: str, value: Any, expires: float, gen_keys: list[str],
                      life: float | None, ttl: float | None, keep: float | None) -> Plan:
    stamps = yield from tier.stamps_plan(gen_keys, life)
    if stamps is False:  # generations unreadable: the store is failing
        return False
    return (yield from tier.put_plan(key, value, expires, stamps, ttl, keep))


def read_many(tier: SharedTier, keys: list[str], now: Callable[[], float], stats: Recorder, absent: Any,
              gen_keys: list[str]) -> Any:
    """``get_many`` on the direct path (``Region._direct_read``): ``{key: value or absent}`` from one
    multi-get (``call_once``) of the keys and ``gen_keys`` (see :func:`read_one`), settled straight into
    the answer; what needs the store again (stamps to check, an unreadable payload) goes on under one
    deadline (:func:`drive_on`)."""
    namespace = tier.namespace
    fulls = list(map(namespace.__add__, keys))
    pending = tier.pending_now() if tier.pending else None  # see SharedTier.fetch_plan
    started = perf_counter()
    if gen_keys:  # the region's generations read in the same multi-get
        got = tier.call_once(None, tier.driver.get_many, fulls + gen_keys)
        if got is not None:
            return drive_on(tier, settle_many(tier, keys, fulls, got, now(), stats, pending, absent), started)
    else:
        entries = tier.call_once(None, tier.driver.get_values, fulls)  # no generation key among them: got = {}
        if entries is not None:
            return drive_on(tier, settle_many(tier, keys, fulls, {}, now(), stats, pending, absent, entries),
                            started)
    if tier.down:
        stats.misses += len(keys)
        return dict.fromkeys(keys, absent)
    # one undecodable payload fails the whole multi-get, but the store is up (not an outage): key by
    # key, the readable entries are still served and only the bad one is a miss
    return drive_on(tier, each_plan(tier, keys, now, stats, absent), started)


def each_plan(tier: SharedTier, keys: list[str], now: Callable[[], float], stats: Recorder, absent: Any) -> Plan:
    """A read of each key (as ``Region.lookup``), settled into ``{key: value or absent}``."""
    out: dict[str, Any] = {}
    for k in keys:
        entry = yield from tier.fetch_plan(k, [])
        if entry is not MISSING and entry[1] > now():
            stats.hits += 1
            out[k] = entry[0]
        else:
            stats.misses += 1
            out[k] = absent
    return out


def put_many_plan(tier: Tier, policy: Policy, stats: Recorder, now: float, mapping: Mapping[str, Any],
                  ttl: Any) -> Plan:
    """Unstamped entries in one round trip per distinct TTL."""
    if not policy.enabled:
        return False
    raw_ints = tier.raw_ints
    groups: dict[float | None, dict[str, Any]] = {}
    for key, value in mapping.items():
        policy.check_key(key)
        t = policy.ttl_for(key, ttl)
        payload = value if type(value) is int and raw_ints else (value, now + t if t is not None else INF, None)
        groups.setdefault(t, {})[tier.key(key)] = payload
    ok = True
    for t, batch in groups.items():
        keep = None if t is None else t + (policy.stale_ttl or 0)
        done = bool((yield (PUT_MANY, (batch, keep), False)))
        if done:
            stats.sets += len(batch)
        ok = ok and done
    return ok


def drive_on(tier: SharedTier, plan: Plan, started: float) -> Any:
    """Run ``plan``, the rest of a direct-path region call whose first store call (``call_once``)
    started at ``started`` (``perf_counter``): a plan that needs the store again (stamps to check)
    runs under one deadline (``deadline.py``) charged with the time since then, or under the region
    call in progress (which counted it already)."""
    try:
        op = next(plan)
    except StopIteration as done:  # the usual case: nothing more to read
        return done.value
    if CALL.get() is not None:
        return drive(tier, plan, op)
    within = Call()
    within.spent = perf_counter() - started
    token = CALL.set(within)
    try:
        return drive(tier, plan, op)
    finally:
        CALL.reset(token)
