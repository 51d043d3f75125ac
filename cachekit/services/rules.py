"""InvalidationRuleService: create, list, read, update and delete invalidation rules; match keys."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from ..config.checks import rule_warnings
from ..config.diagnostics import did_you_mean, one_of
from ..config.models import EventBasedRule, PatternBasedRule, TimeBasedRule
from .base import Service
from .edits import edit_config
from .model_data import deep_merge, model_data, public_data, validate_model
from .result import Result, ServiceFailure, guarded
from .types import InvalidationRule

if TYPE_CHECKING:
    from ..config.models import CacheConfig

_RULE_MODELS: dict[str, type[BaseModel]] = {
    "time_based": TimeBasedRule,
    "pattern_based": PatternBasedRule,
    "event_based": EventBasedRule,
}
_STRATEGY_ALIASES = {"time": "time_based", "ttl": "time_based", "pattern": "pattern_based",
                     "event": "event_based", "events": "event_based"}

def _strategy(value: Any) -> str:
    text = str(getattr(value, "value", value)).strip().lower().replace("-", "_").replace(" ", "_")
    text = _STRATEGY_ALIASES.get(text, text)
    if text not in _RULE_MODELS:
        raise ServiceFailure(f"unknown strategy_type {value!r}; known: {one_of(_RULE_MODELS)}"
                             f"{did_you_mean(text, _RULE_MODELS)}", "invalid")
    return text


def _rule_view(rule: Any) -> InvalidationRule:
    settings = public_data(rule)
    return InvalidationRule(id=rule.name, name=rule.name, strategy_type=rule.strategy,
                            pattern=getattr(rule, "pattern", None), events=list(getattr(rule, "events", [])),
                            ttl=getattr(rule, "ttl", None), regions=list(rule.regions), enabled=rule.enabled,
                            settings=settings)


def _rule_index(cfg: CacheConfig, name: str) -> int:
    for i, rule in enumerate(cfg.rules):
        if rule.name == name:
            return i
    known = [r.name for r in cfg.rules]
    raise ServiceFailure(f"unknown rule {name!r}; known: {one_of(known) or 'none'}{did_you_mean(name, known)}",
                         "not_found")


def rule_model(data: Mapping[str, Any], where: str) -> Any:
    data = dict(data)
    strategy = _strategy(data.pop("strategy_type", data.pop("strategy", "")))
    return validate_model(_RULE_MODELS[strategy], {**data, "strategy": strategy}, where)


class InvalidationRuleService(Service):
    """Create, list, read, update and delete invalidation rules (``id`` = name); find the rules
    that apply to a key."""

    async def create_rule(self, name: str, strategy_type: str, pattern: str | None = None,
                          events: Iterable[str] | None = None, ttl: float | None = None,
                          **settings: Any) -> Result[InvalidationRule]:
        """Declare a rule:

        - ``time_based``: keys matching ``pattern`` (default ``*``) get ``ttl``;
        - ``pattern_based``: ``pattern`` can be invalidated as a unit in O(1) on every store;
        - ``event_based``: ``events`` invalidate ``pattern`` (a template such as ``user:{user_id}``,
          filled from the event's parameters), ``tags`` or (``flush_regions=True``) the regions
          (every region when ``regions`` is empty); an event rule given none of these is kept but
          invalidates nothing, and the Result carries a warning saying so.

        ``regions=[...]`` limits a rule to some regions; ``tags``, ``patterns``, ``enabled``.
        """

        def work() -> InvalidationRule:
            rt = self.runtime
            data = {"name": name, "strategy_type": strategy_type, **settings}
            if pattern is not None:
                data["pattern"] = pattern
            if events is not None:
                data["events"] = [events] if isinstance(events, str) else list(events)
            if ttl is not None:
                data["ttl"] = ttl
            rule = rule_model(data, f"rules.{name}")
            with edit_config(rt, self._guard) as cfg:
                if any(r.name == rule.name for r in cfg.rules):
                    raise ServiceFailure(f"rule {rule.name!r} already exists; update it instead", "conflict")
                cfg.rules.append(rule)
            return _rule_view(rule)

        return self._warned(await guarded(work))

    def _warned(self, result: Result[InvalidationRule]) -> Result[InvalidationRule]:
        """``result`` with the warnings of the rule it holds ("invalidates nothing"...)."""
        if result.is_success() and result.value is not None:
            for rule in self.runtime.config.rules:
                if rule.name == result.value.name:
                    found = tuple(message for _, message in rule_warnings(rule))
                    return dataclasses.replace(result, warnings=found) if found else result
        return result

    async def list_rules(self, strategy_type: str | None = None) -> Result[list[InvalidationRule]]:
        """Every rule, or those of one strategy."""

        def work() -> list[InvalidationRule]:
            wanted = _strategy(strategy_type) if strategy_type is not None else None
            return [_rule_view(r) for r in self.runtime.config.rules if wanted in (None, r.strategy)]

        return await guarded(work)

    async def get_rule(self, rule_id: str) -> Result[InvalidationRule]:
        """One rule by id (its name)."""

        def work() -> InvalidationRule:
            cfg = self.runtime.config
            return _rule_view(cfg.rules[_rule_index(cfg, str(rule_id))])

        return await guarded(work)

    async def update_rule(self, rule_id: str, changes: Mapping[str, Any] | None = None,
                          **more: Any) -> Result[InvalidationRule]:
        """Change fields of a rule (a new ``strategy_type`` starts from the rule's name only)."""

        def work() -> InvalidationRule:
            rt = self.runtime
            name = str(rule_id)
            with edit_config(rt, self._guard) as cfg:
                index = _rule_index(cfg, name)
                current = cfg.rules[index]
                update = {**(changes or {}), **more}
                new_strategy = update.get("strategy_type", update.get("strategy"))
                if new_strategy is not None and _strategy(new_strategy) != current.strategy:
                    base: dict[str, Any] = {"name": current.name, "regions": list(current.regions)}
                else:
                    base = model_data(current)
                    base["strategy_type"] = base.pop("strategy")
                    update.pop("strategy", None)
                rule = rule_model(deep_merge(base, update), f"rules.{name}")
                if rule.name != name and any(r.name == rule.name for r in cfg.rules):
                    raise ServiceFailure(f"rule {rule.name!r} already exists", "conflict")
                cfg.rules[index] = rule
            return _rule_view(rule)

        return self._warned(await guarded(work))

    async def delete_rule(self, rule_id: str) -> Result[bool]:
        """Remove a rule."""

        def work() -> bool:
            rt = self.runtime
            with edit_config(rt, self._guard) as cfg:
                cfg.rules.pop(_rule_index(cfg, str(rule_id)))
            return True

        return await guarded(work)

    async def find_matching_rules(self, key: str,
                                  region: str | None = None) -> Result[list[InvalidationRule]]:
        """Rules whose pattern (or pattern template, ``{...}`` as wildcards) matches ``key``."""
        return await guarded(lambda: [_rule_view(r) for r in self.runtime.find_matching_rules(key, region)])

    async def get_rules_for_event(self, event: str) -> Result[list[InvalidationRule]]:
        """The ``event_based`` rules that ``event`` fires."""
        return await guarded(lambda: [_rule_view(r) for r in self.runtime.config.rules
                                     if isinstance(r, EventBasedRule) and event in r.events])
