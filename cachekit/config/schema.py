"""The JSON Schema of a config file, and the Markdown field reference of ``docs/configuration.md``.

>>> json_schema()["title"]
'cachekit configuration'
"""

from __future__ import annotations

import json
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from .models import (
    BUILTIN_PROVIDER_TYPES,
    PROVIDER_MODELS,
    BreakerConfig,
    BusConfig,
    CacheConfig,
    CacheSection,
    CustomProviderConfig,
    EventBasedRule,
    FileProviderConfig,
    HttpConfig,
    L1Config,
    MemcachedProviderConfig,
    MemoryProviderConfig,
    PatternBasedRule,
    RedisProviderConfig,
    RegionConfig,
    TimeBasedRule,
)
from .secrets import SecretUrl

__all__ = ["SCHEMA_ID", "json_schema", "reference_markdown"]

SCHEMA_ID = "https://cachekit.dev/schema/cachekit-config.json"


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a cachekit TOML file, for editors and CI.

    It accepts and rejects what the validator does for types and keys: providers are told apart by
    ``type`` (a provider named ``memory``, ``file``, ``redis`` or ``memcached`` without a ``type``
    has that type, any other one is ``memory``), rules by ``strategy``; TTLs and timeouts are numbers
    of seconds or duration strings. Cross-references (a region naming an unknown provider...) are
    beyond a schema: ``cachekit validate`` checks them.
    """
    schema = CacheConfig.model_json_schema()
    _discriminate_providers(schema)
    _require_rule_strategy(schema)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
        "title": "cachekit configuration",
        "description": "A cachekit config file (TOML): [cache], [providers.*], [regions.*], [[rules]], "
        "[bus], [http].",
    }


def _ref(model: type[BaseModel]) -> str:
    return f"#/$defs/{model.__name__}"


def _provider_union(default_type: str) -> dict[str, Any]:
    """One provider, told apart by ``type`` (``default_type`` when there is none)."""
    branches: list[dict[str, Any]] = []
    for kind, model in PROVIDER_MODELS.items():
        if kind == default_type:  # its own schema takes "type" absent or equal to kind
            branches.append({"$ref": _ref(model)})
        else:
            branches.append({"allOf": [{"required": ["type"]}, {"$ref": _ref(model)}]})
    branches.append({"$ref": _ref(CustomProviderConfig)})  # "type" required, not a built-in one
    mapping = {kind: _ref(model) for kind, model in PROVIDER_MODELS.items()}
    return {"oneOf": branches, "discriminator": {"propertyName": "type", "mapping": mapping}}


def _discriminate_providers(schema: dict[str, Any]) -> None:
    """``[providers.*]``: exactly one model per ``type``; built-in names imply their type."""
    custom = schema["$defs"][CustomProviderConfig.__name__]
    custom["properties"]["type"]["not"] = {"enum": list(BUILTIN_PROVIDER_TYPES)}
    providers = schema["properties"]["providers"]
    providers["properties"] = {kind: _provider_union(kind) for kind in BUILTIN_PROVIDER_TYPES}
    providers["additionalProperties"] = _provider_union("memory")


def _require_rule_strategy(schema: dict[str, Any]) -> None:
    """``[[rules]]`` are told apart by ``strategy``, which the validator requires."""
    for model in (TimeBasedRule, PatternBasedRule, EventBasedRule):
        definition = schema["$defs"][model.__name__]
        definition["required"] = ["strategy", *definition.get("required", [])]


# (heading, model, intro) of every section, in the order the reference shows them.
_SECTIONS: list[tuple[str, type[BaseModel], str]] = [
    ("`[cache]`", CacheSection, "Global switches."),
    ("`[providers.NAME]` with `type = \"memory\"`", MemoryProviderConfig, "An in-process store."),
    ("`[providers.NAME]` with `type = \"file\"`", FileProviderConfig, "A directory of files."),
    ("`[providers.NAME]` with `type = \"redis\"`", RedisProviderConfig, "Redis (or Sentinel, Cluster)."),
    ("`[providers.NAME]` with `type = \"memcached\"`", MemcachedProviderConfig, "Memcached, one or more."),
    (
        "`[providers.NAME]` with any other `type`",
        CustomProviderConfig,
        "A custom driver: `type = \"custom\"` with `driver = \"pkg.mod:Class\"`, or the name of an "
        "entry point of group `cachekit.providers`. Extra keys are passed to the driver.",
    ),
    ("`breaker` of a provider (`breaker = { ... }` or `[providers.NAME.breaker]`)", BreakerConfig,
     "The circuit breaker of a file, redis, memcached or custom provider (see faults.md)."),
    ("`[regions.NAME]`", RegionConfig, "A caching policy with its own key namespace."),
    ("`l1` of a region (`l1 = { ... }` or `[regions.NAME.l1]`)", L1Config, "An in-process tier before L2."),
    ("`[[rules]]` with `strategy = \"time_based\"`", TimeBasedRule, "A TTL for keys matching a pattern."),
    ("`[[rules]]` with `strategy = \"pattern_based\"`", PatternBasedRule, "A glob invalidated as a unit."),
    ("`[[rules]]` with `strategy = \"event_based\"`", EventBasedRule, "Events that invalidate keys."),
    ("`[bus]`", BusConfig, "Cross-process L1 invalidation over Redis pub/sub."),
    ("`[http]`", HttpConfig, "The HTTP API."),
]


_SECONDS = "seconds (> 0) or duration"


def reference_markdown() -> str:
    """The field tables of every section (key, type, default, meaning), as Markdown."""
    out: list[str] = []
    for heading, model, intro in _SECTIONS:
        out += [f"### {heading}", "", intro, ""]
        out += ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
        for name, field in model.model_fields.items():
            kind = _type_name(field.annotation)
            if kind == "number" and field.metadata:
                kind = _SECONDS
            cells = [f"`{name}`", kind, _default(field), field.description or ""]
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        out.append("")
    return "\n".join(out)


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Annotated:
        args = get_args(tp)
        base = _type_name(args[0])
        gt = next((m.metadata for m in args[1:] if isinstance(m, FieldInfo)), [])
        return _SECONDS if base == "number" and gt else base
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        name = " or ".join(_type_name(a) for a in args)
        return f"{name}, optional" if len(args) < len(get_args(tp)) else name
    if origin is Literal:
        return " or ".join(json.dumps(a) for a in get_args(tp))
    if origin is list:
        return f"array of {_type_name(get_args(tp)[0])}s"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "table"
    return {bool: "boolean", int: "integer", float: "number", str: "string", SecretStr: "secret string",
            SecretUrl: "string"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, BaseModel):
        return "see below"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{json.dumps(value)}`"
