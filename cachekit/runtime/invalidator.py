"""Invalidation: by tags, key patterns and whole regions; events that fire rules; dry runs."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..config.models import EventBasedRule, PatternBasedRule
from ..errors import CacheError, UnsupportedOperation
from .bus import Broadcast
from .policy import compile_glob, escape_glob, has_glob

if TYPE_CHECKING:
    from ..config.models import CacheConfig
    from .region import Region

__all__ = ["InvalidationResult", "Invalidator"]

_PLACEHOLDER = re.compile(r"\{[^{}]*\}")  # a parameter of an event rule's key template: {user_id}


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

    def merge(self, other: InvalidationResult) -> None:
        for name, keys in other.keys.items():
            self.keys.setdefault(name, []).extend(keys)
        for name, gens in other.generations.items():
            self.generations.setdefault(name, []).extend(gens)


class Invalidator:
    """Runs invalidations over the regions ``targets(region=...)`` names, per the live ``config()``."""

    def __init__(self, config: Callable[[], CacheConfig],
                 targets: Callable[[str | Iterable[str] | None], list[Region]], broadcast: Broadcast) -> None:
        self._config = config
        self._targets = targets
        self._broadcast = broadcast

    def invalidate(self, pattern: str | None, tags: Iterable[str] | None, region: str | Iterable[str] | None,
                   *, dry_run: bool = False, literal: bool = False) -> InvalidationResult:
        """``Runtime.invalidate``; ``literal``: ``pattern`` is one key even if it holds glob characters."""
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
                _bump(r, "tag", tags, result, dry_run)
            if pattern is not None:
                self._invalidate_pattern(r, pattern, result, dry_run, literal)
            if pattern is None and not tags:
                if r.flushes_by_generation:
                    result.generations.setdefault(r.name, []).append("region")
                    removed, gens = 0, 1
                else:
                    keys = self._keys_or_empty(r, "*")
                    result.keys.setdefault(r.name, []).extend(keys)
                    removed, gens = len(keys), 0
                if not dry_run:
                    r.flush()
                    r.stats.invalidated("flush", r.name, removed, gens)
        if not dry_run:
            self._broadcast.notify("invalidate", "", {"pattern": pattern, "tags": tags,
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
        rules = self._config().rules
        return [name for regex, name in r.policy.pattern_rules
                if any(rule.name == name and rule.pattern == pattern
                       for rule in rules if isinstance(rule, PatternBasedRule))]

    def _check_listable(self, pattern: str, targets: list[Region]) -> None:
        """Raise if an ad-hoc glob would have to list the keys of a store that cannot."""
        if not has_glob(pattern):
            return
        for r in targets:
            if not r.l2.can_scan and not self._declared(r, pattern):
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
            _bump(r, "rule", declared, result, dry_run)
            return
        if literal or not has_glob(pattern):
            if dry_run:
                if r.has(pattern):
                    result.keys.setdefault(r.name, []).append(pattern)
            elif r.forget(pattern):
                result.keys.setdefault(r.name, []).append(pattern)
                r.stats.invalidated("pattern", pattern, 1)
            else:
                r.stats.invalidated("pattern", pattern, 0)
            return
        keys = r.keys(pattern)  # listable: _check_listable ran first
        result.keys.setdefault(r.name, []).extend(keys)
        if not dry_run:
            if keys:
                r.forget_many(keys)
            r.stats.invalidated("pattern", pattern, len(keys))

    def emit(self, event: str, params: dict[str, Any]) -> InvalidationResult:
        """``Runtime.emit``: every enabled ``event_based`` rule listing ``event`` invalidates its
        patterns (templates filled from ``params``), tags and, if set, regions."""
        # Fill every template before invalidating anything: a missing parameter changes nothing.
        # Parameter values are literal (user_id="*" names the key "user:*", not every user): a template
        # without wildcards of its own names one key; in a glob template, the values are escaped.
        escaped = {k: escape_glob(v) if isinstance(v, str) else v for k, v in params.items()}
        plan = []
        for rule in self._config().rules:
            if not (isinstance(rule, EventBasedRule) and rule.enabled and event in rule.events):
                continue
            patterns = []
            for template in rule.all_patterns():
                literal = not has_glob(_PLACEHOLDER.sub("", template))
                patterns.append((_fill(event, rule.name, "pattern", template, params if literal else escaped),
                                 literal))
            tags = [_fill(event, rule.name, "tag", t, params) for t in rule.tags]
            for pattern, literal in patterns:
                if not literal:
                    self._check_listable(pattern, self._targets(rule.regions or None))
            plan.append((rule.regions or None, patterns, tags, rule.flush_regions))
        total = InvalidationResult()
        for regions, patterns, tags, flush in plan:
            for pattern, literal in patterns:
                total.merge(self.invalidate(pattern, None, regions, literal=literal))
            if tags:
                total.merge(self.invalidate(None, tags, regions))
            if flush:
                total.merge(self.invalidate(None, None, regions))
        for r in self._targets(None):
            removed, gens = len(total.keys.get(r.name, ())), len(total.generations.get(r.name, ()))
            if removed or gens:
                r.stats.invalidated("event", event, removed, gens)
        self._broadcast.notify("event", event, params)
        self._broadcast.publish_event(event, params)
        return total

    def find_matching_rules(self, key: str, region: str | None = None) -> list[Any]:
        """Enabled rules whose pattern (or pattern template, wildcards for parameters) matches ``key``."""
        out = []
        for rule in self._config().rules:
            if not rule.enabled:
                continue
            if region is not None and rule.regions and region not in rule.regions:
                continue
            patterns = rule.all_patterns() if isinstance(rule, EventBasedRule) else [rule.pattern]
            for p in patterns:
                if compile_glob(_PLACEHOLDER.sub("*", p)).match(key):
                    out.append(rule)
                    break
        return out


def _fill(event: str, rule: str, what: str, template: str, params: dict[str, Any]) -> str:
    try:
        return template.format(**params)
    except (KeyError, IndexError) as exc:
        raise CacheError(f"event {event!r}: rule {rule!r} {what} {template!r} needs parameter "
                         f"{exc.args[0]!r}; got {sorted(params) or 'none'}") from None


def _bump(r: Region, kind: str, names: list[str], result: InvalidationResult, dry_run: bool) -> None:
    """Advance the generations ``kind:name`` of ``r`` (tags or declared rules), or only list them
    when ``dry_run``; each counts as one invalidation."""
    result.generations.setdefault(r.name, []).extend(f"{kind}:{n}" for n in names)
    if not dry_run:
        r.bump(kind, names)
        for name in names:
            r.stats.invalidated(kind, name, 0, 1)
