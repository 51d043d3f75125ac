"""docs/configuration.md: its field reference is current and every example in it runs as shown.
Also the JSON Schema."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from cachekit.config import json_schema, load_config, parse_config
from cachekit.config.schema import reference_markdown
from cachekit.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "configuration.md"
BLOCK = re.compile(r"(?:<!-- ([\w-]+) -->\s*\n\s*)?```(\w+)\n(.*?)```", re.S)


def blocks(lang: str) -> list[tuple[str | None, str]]:
    return [(mark, code) for mark, kind, code in BLOCK.findall(PAGE.read_text()) if kind == lang]


def test_field_reference_matches_the_models() -> None:
    text = PAGE.read_text()
    generated = text.split("<!-- BEGIN GENERATED REFERENCE -->")[1].split("<!-- END GENERATED REFERENCE -->")[0]
    assert generated.strip() == reference_markdown().strip(), "run: cachekit schema --markdown"


def test_reference_documents_every_field_of_every_section() -> None:
    from cachekit.config.schema import _SECTIONS

    reference = reference_markdown()
    for _, model, _ in _SECTIONS:
        for name, field in model.model_fields.items():
            assert f"| `{name}` |" in reference
            assert field.description, f"{model.__name__}.{name} has no description"


@pytest.mark.parametrize("code", [c for m, c in blocks("python")], ids=lambda c: c.splitlines()[0][:40])
def test_python_example_runs(code: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.upper().startswith("CACHEKIT_"):
            monkeypatch.delenv(name)
    exec(compile(code, str(PAGE), "exec"), {"__name__": "__docs__"})


@pytest.mark.parametrize("mark_code", blocks("toml"), ids=lambda mc: mc[1].splitlines()[0][:30])
def test_toml_example_is_valid_unless_marked_invalid(mark_code: tuple[str | None, str]) -> None:
    mark, code = mark_code
    if mark == "invalid":
        with pytest.raises(ConfigError):
            parse_config(code, environ={})
    else:
        parse_config(code, environ={})


def test_error_example_output_is_what_validate_prints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cachekit.cli import format_errors

    (invalid,) = [code for mark, code in blocks("toml") if mark == "invalid"]
    (shown,) = [code for mark, code in blocks("text") if mark == "validate-output"]
    (tmp_path / "app.toml").write_text(invalid)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_config("app.toml", environ={})
    assert format_errors([("app.toml", info.value.errors)], "text") == shown


def test_json_schema_has_an_id_a_title_and_every_section() -> None:
    schema = json_schema()
    assert schema["$id"].endswith("cachekit-config.json")
    assert schema["title"] == "cachekit configuration"
    assert set(schema["properties"]) == {"cache", "providers", "regions", "rules", "bus", "http"}
    assert schema["additionalProperties"] is False
    json.dumps(schema)  # serializable as is
