"""Cross-reference checks, run after pydantic has validated the shape of a config.

pydantic checks each value on its own; these checks look across the config: a region naming a provider
that does not exist, an L1 tier on a shared store, a rule naming an unknown region, two rules with one
name, a bus on something that is not Redis, a provider ``type`` that no driver answers to.

:func:`validate_config` runs everything (shape and cross-references) on a live config, for example after
a service edited it, and returns the problems as :class:`~cachekit.errors.ConfigErrorItem` s.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from ..errors import ConfigErrorItem
from ..providers.types import ENTRY_POINT_GROUP, NETWORK_STORES
from ..serializers import ENV_SIGNING_KEY, unsigned_pickle_message
from .diagnostics import Locator, did_you_mean, items_from_validation_error, one_of
from .models import BUILTIN_PROVIDER_TYPES, CacheConfig, CustomProviderConfig, EventBasedRule, region_name_problem
from .toml_lines import LineMap, PathKey

__all__ = ["ENTRY_POINT_GROUP", "config_data", "config_warnings", "cross_check", "cross_warnings",
           "provider_entry_points", "rule_warnings", "validate_config"]

_DRIVER_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")

Problem = tuple[PathKey, str]


def validate_config(config: CacheConfig) -> list[ConfigErrorItem]:
    """Every problem of a (possibly edited) live config; an empty list means valid.

    The shape is validated again (a dict entry replaced by hand skips pydantic's assignment
    validation), then the cross-references. Lines refer to the kept TOML document, if any.
    """
    locator = _locator(config)
    data = config_data(config)
    try:
        checked: Any = _data_model().model_validate(data)
    except ValidationError as exc:
        return items_from_validation_error(exc, _data_model(), locator, data)
    return [locator.item(path, message) for path, message in cross_check(checked)]


def config_warnings(config: CacheConfig) -> list[ConfigErrorItem]:
    """What a valid config does that its author probably did not mean (``cachekit validate`` prints
    these as warnings; they never make a config invalid)."""
    locator = _locator(config)
    return [locator.item(path, message) for path, message in cross_warnings(config)]


def _locator(config: CacheConfig) -> Locator:
    document = config.document
    return Locator(
        file=config._file or (str(config.source_path) if config.source_path else None),
        lines=LineMap.from_text(document.as_string()) if document is not None else None,
        env=config._env,
    )


def cross_warnings(config: Any) -> list[Problem]:
    """The warnings of a config whose shape is valid, in declaration order."""
    return [*_warn_rules(config), *_warn_bus(config), *_warn_unsigned_pickle(config)]


def cross_check(config: Any) -> list[Problem]:
    """The cross-reference problems of a config whose shape is valid, in declaration order."""
    return [
        *_check_names(config),
        *_check_provider_types(config),
        *_check_cache_section(config),
        *_check_regions(config),
        *_check_rules(config),
        *_check_bus(config),
        *_check_pickle(config),
    ]


def provider_entry_points() -> list[str]:
    """Names of the drivers registered under the ``cachekit.providers`` entry point group."""
    from importlib import metadata  # here, not at import: it costs ~15 ms to load

    try:
        return sorted({ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)})
    except Exception:  # a broken distribution must not break validation
        return []


def config_data(model: Any) -> Any:
    """Plain data of a config (models as dicts; secrets stay :class:`~pydantic.SecretStr`)."""
    if isinstance(model, BaseModel):
        data = {name: config_data(getattr(model, name)) for name in type(model).model_fields}
        for key, value in (model.model_extra or {}).items():
            data[key] = config_data(value)
        return data
    if isinstance(model, dict):
        return {key: config_data(value) for key, value in model.items()}
    if isinstance(model, list | tuple):
        return [config_data(value) for value in model]
    return model


@functools.cache
def _data_model() -> type[BaseModel]:
    """``CacheConfig``'s fields on a plain model: validates data without reading the environment."""
    fields: Any = {name: (field.annotation, field) for name, field in CacheConfig.model_fields.items()}
    return create_model("CacheConfigData", __config__=ConfigDict(extra="forbid"), **fields)


# -- the checks ---------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def name_problem(what: str, name: Any, *, slash: bool = True) -> str | None:
    """Why ``name`` cannot name a ``what`` (a provider, a rule, a tag, an event), or ``None``.

    Names are shown in logs, stats labels and errors, and addressed by the CLI and the HTTP API: they
    are non-empty strings without control characters (a newline would forge a log line; ``NUL`` is
    cachekit's own separator); ``slash = False`` also refuses ``/`` (a provider is addressed by name in
    one URL segment, ``/api/cache/providers/{name}/summary``).
    """
    if not isinstance(name, str) or not name:
        article = "an" if what[0] in "aeiou" else "a"
        return f"{article} {what} name is a non-empty string, not {name!r}"
    if _CONTROL.search(name):
        return f"{what} name {name!r} contains a control character; use printable characters"
    if not slash and "/" in name:
        return f"{what} name {name!r} contains '/', which the HTTP API cannot address; use another character"
    return None


def _check_names(config: Any) -> Iterator[Problem]:
    """Names the runtime would refuse, or could not address, on first use: refused when validated."""
    for name in config.providers:
        bad = name_problem("provider", name, slash=False)
        if bad:
            yield ("providers", name), bad
    for index, rule in enumerate(config.rules):
        bad = name_problem("rule", rule.name)
        if bad:
            yield ("rules", index, "name"), bad
        for field, what in (("tags", "tag"), ("events", "event")):
            for position, value in enumerate(getattr(rule, field, None) or ()):
                bad = name_problem(what, value)
                if bad:
                    yield ("rules", index, field, position), bad


def _provider_type(config: Any, name: str) -> str | None:
    """The type of a declared provider, of an undeclared built-in name, or None when unknown."""
    provider = config.providers.get(name)
    if provider is not None:
        return str(provider.type)
    return name if name in BUILTIN_PROVIDER_TYPES else None


def _known_providers(config: Any) -> list[str]:
    return [*config.providers, *(b for b in BUILTIN_PROVIDER_TYPES if b not in config.providers)]


def _unknown_provider(config: Any, name: str) -> str:
    known = _known_providers(config)
    return f"unknown provider '{name}'; known: {one_of(known)}{did_you_mean(name, known)}"


def _check_provider_types(config: Any) -> Iterator[Problem]:
    entry_points: list[str] | None = None
    for name, provider in config.providers.items():
        if not isinstance(provider, CustomProviderConfig):
            continue
        path: PathKey = ("providers", name)
        if provider.driver is not None:
            if not _DRIVER_PATH.match(provider.driver):
                yield (*path, "driver"), (
                    f"driver must look like 'package.module:ClassName', got '{provider.driver}'"
                )
            continue
        if provider.type == "custom":
            yield (*path, "driver"), 'a custom provider needs driver = "package.module:ClassName"'
            continue
        if entry_points is None:
            entry_points = provider_entry_points()
        if provider.type in entry_points:
            continue
        known = [*BUILTIN_PROVIDER_TYPES, *entry_points]
        registered = f" (registered: {one_of(entry_points)})" if entry_points else ""
        yield (*path, "type"), (
            f"unknown provider type '{provider.type}'; known: {one_of(BUILTIN_PROVIDER_TYPES)}, "
            f'or a custom driver (type = "custom", driver = "pkg.mod:Class") / an entry point of group '
            f"{ENTRY_POINT_GROUP}{registered}{did_you_mean(provider.type, known)}"
        )


def _check_cache_section(config: Any) -> Iterator[Problem]:
    default_provider = config.cache.default_provider
    if _provider_type(config, default_provider) is None:
        yield ("cache", "default_provider"), _unknown_provider(config, default_provider)
    default_region = config.cache.default_region
    bad_name = region_name_problem(default_region)
    if bad_name:
        yield ("cache", "default_region"), bad_name
    elif default_region != "default" and default_region not in config.regions:
        # "default" needs no declaration: it takes the [cache] defaults.
        known = list(config.regions)
        yield ("cache", "default_region"), (
            f"unknown region '{default_region}'; known: {one_of(known) or 'none declared'} "
            f"(or leave it as \"default\"){did_you_mean(default_region, known)}"
        )


def _check_regions(config: Any) -> Iterator[Problem]:
    for name, region in config.regions.items():
        path: PathKey = ("regions", name)
        bad_name = region_name_problem(name)
        if bad_name:
            yield path, bad_name
        if region.provider is not None and _provider_type(config, region.provider) is None:
            yield (*path, "provider"), _unknown_provider(config, region.provider)
        if region.l1 is not None:
            l1 = region.l1.provider
            kind = _provider_type(config, l1)
            if kind is None:
                yield (*path, "l1", "provider"), _unknown_provider(config, l1)
            elif kind != "memory":
                memory = [p for p in _known_providers(config) if _provider_type(config, p) == "memory"]
                yield (*path, "l1", "provider"), (
                    f"L1 must be an in-process memory provider; '{l1}' is {kind} "
                    f"(memory providers: {one_of(memory)})"
                )


def _region_names(config: Any) -> list[str]:
    names = list(config.regions)
    if config.cache.default_region not in names:
        names.append(config.cache.default_region)
    return names


def _check_rules(config: Any) -> Iterator[Problem]:
    seen: dict[str, int] = {}
    regions = _region_names(config)
    for index, rule in enumerate(config.rules):
        path: PathKey = ("rules", index)
        if rule.name in seen:
            first = seen[rule.name]
            yield (*path, "name"), f"duplicate rule name '{rule.name}' (first used by rules[{first}])"
        else:
            seen[rule.name] = index
        for position, region in enumerate(rule.regions):
            if region not in regions:
                yield (*path, "regions", position), (
                    f"unknown region '{region}'; known: {one_of(regions)}{did_you_mean(region, regions)}"
                )


def rule_warnings(rule: Any) -> list[Problem]:
    """The warnings of one rule, with paths relative to the rule."""
    if isinstance(rule, EventBasedRule) and not (rule.all_patterns() or rule.tags or rule.flush_regions):
        return [(("events",), f"rule '{rule.name}' invalidates nothing when its events fire: set pattern, "
                              "patterns, tags or flush_regions = true")]
    return []


def _warn_rules(config: Any) -> Iterator[Problem]:
    for index, rule in enumerate(config.rules):
        for path, message in rule_warnings(rule):
            yield ("rules", index, *path), message


def _warn_bus(config: Any) -> Iterator[Problem]:
    if not config.cache.multi_level or config.bus.enabled is False or config.bus.provider is not None \
            or any(_provider_type(config, p) == "redis" for p in config.providers):
        return
    for name, region in config.regions.items():
        if region.l1 is None:
            continue
        provider = region.provider or config.cache.default_provider
        kind = _provider_type(config, provider)
        if kind is None or kind == "memory":
            continue
        ttl = region.l1.ttl
        after = f"after l1.ttl ({ttl:g}s)" if ttl else "when the entry expires (l1.ttl is unset)"
        yield ("regions", name, "l1"), (
            f"no redis provider is declared to carry the bus: other processes' writes to '{provider}' "
            f"reach this L1 only {after}; declare a redis provider, or set [bus] enabled = false "
            "to accept that"
        )


def _check_bus(config: Any) -> Iterator[Problem]:
    bus = config.bus
    redis = [p for p in _known_providers(config) if _provider_type(config, p) == "redis"]
    if bus.provider is not None:
        kind = _provider_type(config, bus.provider)
        if kind is None:
            yield ("bus", "provider"), _unknown_provider(config, bus.provider)
        elif kind != "redis":
            yield ("bus", "provider"), (
                f"the bus needs a redis provider; '{bus.provider}' is {kind} "
                f"(redis providers: {one_of(redis)})"
            )


# -- pickle on network stores -------------------------------------------------------------------------


def _signed(config: Any, provider: Any) -> bool:
    """A signing key applies: the provider's, or ``CACHEKIT_SIGNING_KEY`` in the environment the config
    was built from (the one its drivers read)."""
    if provider is not None and (provider.signing_key is not None or getattr(provider, "encryption_keys", None)):
        return True  # encrypted payloads are authenticated too (AES-GCM)
    capture = getattr(config, "_env", None)
    environ = capture.environ if capture is not None and capture.environ is not None else os.environ
    return bool(environ.get(ENV_SIGNING_KEY) or environ.get("CACHEKIT_ENCRYPTION_KEYS"))


def _unsigned_pickle(config: Any) -> Iterator[tuple[PathKey, str, Any]]:
    """``(path, provider type, provider config)`` of each explicit unsigned ``serializer = "pickle"``
    on a network store, provider or region."""
    for name, provider in config.providers.items():
        if provider.type in NETWORK_STORES and provider.serializer == "pickle" and not _signed(config, provider):
            yield ("providers", name, "serializer"), provider.type, provider
    for name, region in config.regions.items():
        if region.serializer != "pickle":
            continue
        provider_name = region.provider or config.cache.default_provider
        kind = _provider_type(config, provider_name)
        provider = config.providers.get(provider_name)
        if kind in NETWORK_STORES and not _signed(config, provider):
            yield ("regions", name, "serializer"), str(kind), provider


def _check_pickle(config: Any) -> Iterator[Problem]:
    for path, kind, provider in _unsigned_pickle(config):
        if provider is None or not provider.allow_unsigned_pickle:
            yield path, unsigned_pickle_message(kind)


def _warn_unsigned_pickle(config: Any) -> Iterator[Problem]:
    for path, kind, provider in _unsigned_pickle(config):
        if provider is not None and provider.allow_unsigned_pickle:
            yield path, (
                f"unsigned pickle on a {kind} store (allow_unsigned_pickle = true): whoever can write to "
                "the store can run code in every process that reads it; set a signing_key to sign it"
            )
