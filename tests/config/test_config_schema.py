"""`cachekit schema` and the validator agree: every shipped and valid config validates against the JSON
Schema, and what the validator rejects for a type or an unknown key, the schema rejects too."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import tomlkit
from pydantic import ValidationError

from cachekit.config import CacheConfig, json_schema, load_config, parse_config
from cachekit.config.checks import _data_model
from cachekit.config.diagnostics import explain
from cachekit.config.models import imply_provider_types
from cachekit.config.schema import _SECTIONS
from cachekit.config.toml_lines import format_path
from cachekit.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "configs"
SHIPPED = sorted([*(ROOT / "configs").rglob("*.toml"), ROOT / "cachekit" / "default.toml"])
VALID = sorted((DATA / "valid").glob("*.toml"))
INVALID = sorted(p for p in (DATA / "invalid").glob("*.toml") if p.name != "malformed.toml")
# The errors of a value of the wrong type or shape, or of a key that does not exist: what a schema can
# see too (a field validator's own checks, and references across sections, it cannot).
SHAPE_KINDS = frozenset({
    "int_type", "float_type", "bool_type", "string_type", "list_type", "dict_type", "model_type",
    "literal_error", "extra_forbidden", "missing", "union_tag_invalid", "union_tag_not_found",
    "greater_than", "greater_than_equal", "less_than", "less_than_equal", "too_short", "too_long",
    "string_too_short", "string_too_long", "string_pattern_mismatch", "int_from_float",
})


def shape_errors(data: Any) -> list[tuple[str, str]]:
    """(dotted path, pydantic error type) of each shape error the validator finds in TOML ``data``."""
    try:
        _data_model().model_validate(imply_provider_types(data), strict=True)
    except ValidationError as exc:
        return [(format_path(explain(e, CacheConfig)[0]), e["type"])
                for e in exc.errors(include_url=False) if e["type"] in SHAPE_KINDS]
    return []


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    result = subprocess.run([str(Path(sys.executable).parent / "cachekit"), "schema"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    assert schema == json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def toml(text: str) -> Any:
    return tomlkit.parse(text).unwrap()


def schema_errors(validator: jsonschema.Draft202012Validator, data: Any) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in validator.iter_errors(data)]


def test_the_schema_lists_the_shipped_configs() -> None:
    assert ROOT / "configs" / "default.toml" in SHIPPED and len(SHIPPED) >= 3


@pytest.mark.parametrize("path", SHIPPED + VALID, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_and_valid_config_validates_against_the_schema(
    path: Path, validator: jsonschema.Draft202012Validator
) -> None:
    load_config(path, environ={})  # valid for the validator
    assert schema_errors(validator, toml(path.read_text())) == []


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_what_the_validator_rejects_for_a_type_or_an_unknown_key_the_schema_rejects(
    path: Path, validator: jsonschema.Draft202012Validator
) -> None:
    with pytest.raises(ConfigError):
        load_config(path, environ={})
    shape = shape_errors(toml(path.read_text()))
    errors = schema_errors(validator, toml(path.read_text()))
    if shape:
        assert errors, f"the schema accepts {path.name}, which the validator rejects: {shape}"
    else:  # cross-references only (an unknown provider...): beyond a schema
        assert errors == []


def test_the_invalid_examples_include_type_and_unknown_key_errors() -> None:
    names = {path.name for path in INVALID if shape_errors(toml(path.read_text()))}
    assert {"wrong_toml_types.toml", "typo_key.toml", "redis_key_on_memory.toml", "unknown_strategy.toml"} <= names


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ('[providers.redis]\nurl = "redis://r:6379/0"\n', True),  # the name implies type = "redis"
        ('[providers.cache]\nurl = "redis://r:6379/0"\n', False),  # no type, no built-in name: memory
        ('[providers.cache]\ntype = "redis"\nurl = "redis://r:6379/0"\n', True),
        ('[providers.cache]\n', True),  # an empty table is a memory provider
        ('[providers.file]\n', True),
        ('[providers.x]\ntype = "custom"\ndriver = "pkg.mod:Driver"\nhost = "h"\n', True),
        ('[providers.x]\ntype = "redis"\nhost = 5\n', False),
        ('[providers.x]\ntype = "redis"\ndriver = "pkg.mod:Driver"\n', False),  # not a custom one
        ('[regions.r]\nttl = "1h30m"\n', True),
        ('[regions.r]\nttl = "60"\n', False),
        ('[regions.r]\nttl = 0\n', False),
        ('[regions.r]\nttl = 1.5\n', True),
        ('[cache]\nmulti_level = 0\n', False),
        ('[cache]\nstrict = "yes"\n', False),
        ('[[rules]]\nname = "r"\npattern = "user:*"\n', False),  # no strategy
        ('[[rules]]\nname = "r"\nstrategy = "pattern_based"\npattern = "user:*"\n', True),
    ],
)
def test_schema_and_validator_agree_on_these(
    text: str, valid: bool, validator: jsonschema.Draft202012Validator
) -> None:
    assert (schema_errors(validator, toml(text)) == []) is valid
    try:
        parse_config(text, environ={})
    except ConfigError as exc:
        assert not valid, exc
    else:
        assert valid


# Every scalar field of every section, with a value of each TOML type: when the validator rejects the
# value for its type or range, so does the schema; when the schema rejects it, so does the validator.
def _placements() -> list[tuple[str, list[str], dict[str, Any]]]:
    """(dotted path, path to the field, a minimal document around it) for every scalar field."""
    required = {"TimeBasedRule": {"ttl": 5}, "PatternBasedRule": {"pattern": "p"}, "EventBasedRule": {"events": ["e"]}}
    out = []
    for _, model, _ in _SECTIONS:
        name = model.__name__
        for field_name in model.model_fields:
            if field_name in ("type", "strategy", "l1", "breaker"):  # nested tables: placed on their own
                continue
            if name == "CacheSection":
                doc: dict[str, Any] = {"cache": {}}
                where = ["cache"]
            elif name.endswith("ProviderConfig"):
                default = model.model_fields["type"].default
                kind = default if isinstance(default, str) else "custom"
                extra = {"driver": "pkg.mod:Driver"} if kind == "custom" else {}
                doc, where = {"providers": {"p": {"type": kind, **extra}}}, ["providers", "p"]
            elif name == "RegionConfig":
                doc, where = {"regions": {"r": {}}}, ["regions", "r"]
            elif name == "BreakerConfig":
                doc, where = {"providers": {"p": {"type": "redis", "breaker": {}}}}, ["providers", "p", "breaker"]
            elif name == "L1Config":
                doc, where = {"regions": {"r": {"l1": {}}}}, ["regions", "r", "l1"]
            elif name.endswith("Rule"):
                strategy = model.model_fields["strategy"].default
                doc = {"rules": [{"name": "n", "strategy": strategy, **required[name]}]}
                where = ["rules", "0"]
            else:  # a top-level section ([bus], [http]...); a model found nowhere else is left out
                sections = [key for key, f in CacheConfig.model_fields.items() if f.annotation is model]
                if not sections:
                    continue
                doc, where = {sections[0]: {}}, [sections[0]]
            out.append((f"{name}.{field_name}", [*where, field_name], doc))
    return out


CANDIDATES: list[Any] = [True, 0, 7, -2, 1.5, "5m", "60", "text", ["a"], {"k": 1}]


@pytest.mark.parametrize(("label", "where", "doc"), _placements(), ids=[p[0] for p in _placements()])
def test_validator_and_schema_agree_on_the_type_of_every_field(
    label: str, where: list[str], doc: dict[str, Any], validator: jsonschema.Draft202012Validator
) -> None:
    dotted = ".".join(where).replace(".0.", "[0].")
    for value in CANDIDATES:
        data = json.loads(json.dumps(doc))
        parent = data
        for part in where[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        parent[where[-1]] = value
        text = tomlkit.dumps(data)
        try:
            parse_config(text, environ={})
            problems = []
        except ConfigError as exc:
            problems = [item.message for item in exc.errors if item.path == dotted]
        rejected_for_shape = any(path == dotted for path, _ in shape_errors(toml(text)))
        assert not rejected_for_shape or problems, (label, value)  # the loader reports it too
        schema_rejects = bool(schema_errors(validator, toml(text)))
        assert not rejected_for_shape or schema_rejects, (label, value, problems)
        assert not schema_rejects or problems, (label, value, schema_errors(validator, toml(text)))
