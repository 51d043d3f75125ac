"""How a region's entries stop being served, mixed into :class:`~cachekit.runtime.region.Region`.

Generations: an entry may be stamped with the generations of its tags, of the declared pattern
rules its key matches and of the region itself (on a store that cannot list keys, or with ``flush =
"generation"``); advancing one (:meth:`bump`) makes every entry stamped with it a miss, in O(1).
Tags: the views that stamp writes, and their flush. L1: every removal in L2 drops the key from this
process's L1 and tells the other processes' L1s over the bus. The runtime-wide rules (patterns,
events, dry runs) live in ``invalidator.py``; this is one region's side of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .deadline import current_call
from .generations import generation_life
from .plans import Plan
from .tags import TaggedCache

if TYPE_CHECKING:
    from .region import Region

    _Base = Region
else:
    _Base = object

__all__ = ["InvalidationMixin"]

_NO_KEYS: list[str] = []  # shared and never mutated: "no generations apply"


class InvalidationMixin(_Base):
    """Generations, tags and L1 removal of :class:`~cachekit.runtime.region.Region` (mixed into it)."""

    # -- L1 maintenance -------------------------------------------------------------------
    def drop_l1(self, keys: Iterable[str] | None) -> None:
        """Remove ``keys`` (``None``: everything) from L1 and advance its epoch; no bus message."""
        if self._near is not None:
            self._near.drop(keys)

    def _l1_forget(self, key: str) -> None:
        """After a change of ``key`` in L2: drop it from this L1 and tell the other processes."""
        if self._near is not None:
            self._near.drop((key,))
            self._publish("forget", key)

    def _publish(self, kind: str, key: Any) -> None:
        """Tell the other processes' L1s (a bus failure is counted); skipped (counted) in a call that
        found its store down: it kept what their L1s hold, and the bus most likely shares its fate."""
        within = current_call()
        if (within is not None and within.down) or not self._broadcast.publish(self.name, kind, key):
            self.stats.errors += 1

    def _clear_l1(self) -> None:
        if self._near is not None:
            self._near.drop(None)
            self._publish("clear", None)

    # -- generations ----------------------------------------------------------------------
    def _gen_keys(self, key: str, tags: Iterable[str]) -> list[str]:
        if not tags and not self._stamped:
            return _NO_KEYS
        gen_key = self.l2.gen_key
        keys = [gen_key("tag", t) for t in tags]
        for regex, rule in self.policy.pattern_rules:
            if regex.match(key):
                keys.append(gen_key("rule", rule))
        if self._region_gen is not None:
            keys.append(self._region_gen)
        return keys

    def _stamps_plan(self, key: str, tags: tuple[str, ...], keep: float | None = None) -> Plan:
        """The stamps a new entry carries: ``None`` (none apply), a tuple, or ``False`` (store failing).

        ``keep`` is how long the store keeps the entry (``None``: no expiry); the generation keys it
        is stamped with must live at least that long."""
        gen_keys = self._gen_keys(key, tags)
        if not gen_keys:
            return None
        life = generation_life(self.policy, keep)
        return (yield from self.l2.stamps_plan(gen_keys, life))

    def _put_stamped_plan(self, key: str, value: Any, expires: float, tags: tuple[str, ...],
                          keep: float | None) -> Plan:
        """Write an entry stamped with the generations that apply, checked in the same round trip
        (``SharedTier.put_stamped_plan``): ``True``/``False``, or ``None`` when the caller must read the
        stamps first (none apply, this process has not seen them yet, or one moved)."""
        gen_keys = self._gen_keys(key, tags)
        if not gen_keys or not self.l2.remote:  # a local tier stamps without I/O
            return None
        life = generation_life(self.policy, keep)
        return (yield from self.l2.put_stamped_plan(  # type: ignore[attr-defined]
            key, value, expires, gen_keys, life, keep))

    def bump(self, kind: str, names: Iterable[str]) -> int:
        """Advance the generation of tags / rules: every entry stamped with them becomes a miss."""
        tier = self.l2
        count = 0
        for name in names:
            if tier.advance(tier.gen_key(kind, name)):
                count += 1
        self._clear_l1()
        return count

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
