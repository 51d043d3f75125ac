"""Edit a tomlkit document in place so that it says what a live config says.

:class:`DocumentWriter` compares live values with the values as loaded and touches only what differs: a
changed value replaces the old one (its trailing comment kept), a new provider, region or rule is appended
as a table after a blank line, a deleted table takes the comments above its header with it and hands the
comments at its end to the next table. :func:`cachekit.config.save.save_config` drives it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import tomlkit
from pydantic import BaseModel, SecretStr
from tomlkit.container import Container, OutOfOrderTableProxy
from tomlkit.items import AoT, Array, Comment, Float, InlineTable, Null, Table, Whitespace

from ..errors import ConfigError, ConfigErrorItem
from .checks import config_data
from .env import EnvCapture
from .toml_lines import PathKey, format_path

__all__ = ["DocumentWriter"]

_ABSENT: Any = object()
# Keys written first in a new table, so that it reads like a hand-written one.
_LEADING_KEYS = ("name", "type", "strategy", "driver", "provider")


class DocumentWriter:
    """Edits a tomlkit document so that it says what the live config says."""

    def __init__(self, document: Any, env: EnvCapture) -> None:
        self.document = document
        self.env = env

    # -- models and mappings -----------------------------------------------------------------
    def sync_model(self, container: Any, model: BaseModel, base: Any, path: PathKey) -> None:
        """Bring the keys of ``container`` in line with ``model``, touching only what changed."""
        base = base if isinstance(base, dict) else {}
        names = [*type(model).model_fields, *(model.model_extra or {})]
        for name in names:
            value = getattr(model, name)
            self.sync_value(container, name, value, base.get(name, _ABSENT), (*path, name), model)
        for name in base:
            if name not in names and name in container:
                del container[name]

    def sync_value(
        self, container: Any, key: str, value: Any, base: Any, path: PathKey, owner: BaseModel | None
    ) -> None:
        """Write ``value`` at ``container[key]`` if it differs from what was loaded."""
        if config_data(value) == base:
            return
        if isinstance(value, SecretStr) and self.env.variable_for(path) is not None:
            return  # never write a secret that the environment provided
        if isinstance(value, BaseModel):
            current = container.get(key) if key in container else None
            if _is_table(current) and isinstance(base, dict):
                self.sync_model(current, value, base, path)
            else:
                table = self.new_table(value, path, inline=len(path) > 1)
                if len(table) or key in container:
                    _set(container, key, table)
        elif isinstance(value, dict):
            self.sync_mapping(container, key, value, base if isinstance(base, dict) else {}, path)
        elif isinstance(value, list) and _is_model_list(value, base):
            self.sync_rules(container, key, value, base if isinstance(base, list) else [], path)
        elif value is None:
            self.clear(container, key, owner, path)
        else:
            self.set_scalar(container, key, value)

    def sync_mapping(self, container: Any, key: str, value: dict[str, Any], base: dict[str, Any],
                     path: PathKey) -> None:
        """``[providers.*]`` / ``[regions.*]``: edit, append or delete one table per entry."""
        if key not in container:
            if not value:
                return
            blank_before = container.as_string().endswith("\n\n")
            _set(container, key, tomlkit.table(is_super_table=True))
            if blank_before:  # tomlkit < 0.15.1 would add a second blank line before it
                container[key].trivia.indent = ""
        tables = container[key]
        for name, entry in value.items():
            entry_path = (*path, name)
            if name in tables and name in base and _is_table(tables[name]):
                if isinstance(entry, BaseModel):
                    self.sync_model(tables[name], entry, base[name], entry_path)
                else:
                    self.sync_value(tables, name, entry, base[name], entry_path, None)
            elif name not in base or config_data(entry) != base[name]:
                new = self.new_table(entry, entry_path) if isinstance(entry, BaseModel) else _plain(entry)
                _append(tables, name, new)
        for name in base:
            if name not in value and name in tables:
                _delete(self.document, tables, name)

    def sync_rules(
        self, container: Any, key: str, rules: list[BaseModel], base: list[Any], path: PathKey
    ) -> None:
        """``[[rules]]``: matched by name (a rename of one rule in place is an edit, not a swap)."""
        if key not in container:
            _set(container, key, tomlkit.aot())
        items = container[key]
        base_by_name = {b.get("name"): b for b in base if isinstance(b, dict)}
        live_names = {getattr(r, "name", None) for r in rules}
        renamed = {
            getattr(rule, "name", None): base[i].get("name")
            for i, rule in enumerate(rules)
            if i < len(base) and getattr(rule, "name", None) not in base_by_name
            and base[i].get("name") not in live_names
        }
        for name in base_by_name:
            if name not in live_names and name not in renamed.values():
                index = _index_by_name(items, name)
                if index is not None:
                    _delete_element(self.document, items, index)
        for index, rule in enumerate(rules):
            name = getattr(rule, "name", None)
            old = renamed.get(name, name)
            position = _index_by_name(items, old)
            rule_path = (*path, index)
            if position is None:
                table = self.new_table(rule, rule_path, inline=isinstance(items, Array))
                if isinstance(items, AoT):
                    _ensure_blank_line_before(items)
                items.append(table)
            else:
                self.sync_model(items[position], rule, base_by_name.get(old, {}), rule_path)
        if not len(items):
            del container[key]

    def clear(self, container: Any, key: str, owner: BaseModel | None, path: PathKey) -> None:
        """A value set to None: drop the key if None is its default; TOML has no null otherwise."""
        if key not in container:
            return
        field = type(owner).model_fields.get(key) if owner is not None else None
        optional = field is not None and not field.is_required()
        if optional and field is not None and field.get_default(call_default_factory=True) is None:
            del container[key]
            return
        raise ConfigError([ConfigErrorItem(
            path=format_path(path),
            message="is None, which TOML cannot express and which is not this key's default; set a value",
        )])

    def set_scalar(self, container: Any, key: str, value: Any) -> None:
        """Replace one value (its trailing comment kept), unless the file already says it."""
        current = container.get(key) if key in container else None
        plain = _plain(value)
        if current is not None and _unwrap(current) == plain:
            return
        if isinstance(plain, float) and plain.is_integer() and not isinstance(current, Float):
            plain = int(plain)  # ttl = 42, not 42.0, unless the file wrote a float there
        _set(container, key, plain)

    # -- new tables ----------------------------------------------------------------------------
    def new_table(self, model: BaseModel, path: PathKey, *, inline: bool = False) -> Table | InlineTable:
        """A table of the non-default values of ``model`` (plus its name / type / strategy)."""
        table: Table | InlineTable = tomlkit.inline_table() if inline else tomlkit.table()
        fields = type(model).model_fields
        rank = {name: i for i, name in enumerate(_LEADING_KEYS)}
        ordered = sorted(fields, key=lambda n: rank.get(n, len(rank)))
        for name in [*ordered, *(model.model_extra or {})]:
            value = getattr(model, name)
            field = fields.get(name)
            always = name in _LEADING_KEYS and value is not None
            if (
                not always and field is not None and not field.is_required()
                and config_data(value) == config_data(field.get_default(call_default_factory=True))
            ):
                continue
            if value is None or self.env.variable_for((*path, name)) is not None:
                continue
            if isinstance(value, BaseModel):
                table[name] = self.new_table(value, (*path, name), inline=True)
            else:
                table[name] = _toml_value(value)
        if not inline:
            table.add(tomlkit.nl())
        return table


# -- tomlkit helpers ------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, BaseModel):
        return {k: _plain(v) for k, v in config_data(value).items() if v is not None}
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _toml_value(value: Any) -> Any:
    plain = _plain(value)
    if isinstance(plain, float) and plain.is_integer():
        return int(plain)
    return plain


def _unwrap(item: Any) -> Any:
    return item.unwrap() if hasattr(item, "unwrap") else item


def _is_model_list(value: list[Any], base: Any) -> bool:
    if value:
        return all(isinstance(v, BaseModel) for v in value)
    return isinstance(base, list) and bool(base) and all(isinstance(b, dict) for b in base)


def _is_table(item: Any) -> bool:
    return isinstance(item, Table | InlineTable | OutOfOrderTableProxy | Container)


def _set(container: Any, key: str, value: Any) -> None:
    container[key] = value


def _append(container: Any, key: str, table: Any) -> None:
    if isinstance(table, Table):
        _ensure_blank_line_before(container)
    container[key] = table


def _ensure_blank_line_before(container: Any) -> None:
    """A new table goes after the last one of ``container``: make sure a blank line separates them."""
    last = _last_table(container)
    if last is None:
        return
    body = last.value.body
    if body and isinstance(body[-1][1], Whitespace) and body[-1][1].s.count("\n") >= 1:
        return
    if not last.value.as_string().endswith("\n\n"):
        last.add(tomlkit.nl())


def _last_table(container: Any) -> Table | None:
    if isinstance(container, AoT):
        return container[-1] if len(container) else None
    if isinstance(container, OutOfOrderTableProxy):
        tables = [v for v in container.values() if isinstance(v, Table)]
        return tables[-1] if tables else None
    values = [v for v in (container.value.body if isinstance(container, Table) else []) if v[0] is not None]
    tables = [v for _, v in values if isinstance(v, Table)]
    return tables[-1] if tables else None


def _index_by_name(items: Any, name: Any) -> int | None:
    for index, item in enumerate(items):
        if isinstance(item, Table | InlineTable | dict) and item.get("name") == name:
            return index
    return None


def _delete(document: Any, container: Any, key: str) -> None:
    """Delete the table ``container[key]`` (see :func:`_detach`)."""
    item = container[key]
    if isinstance(item, Table):
        _detach(document, item)
    del container[key]


def _delete_element(document: Any, items: Any, index: int) -> None:
    """Delete ``items[index]`` of an array of tables (see :func:`_detach`)."""
    if isinstance(items, AoT):
        _detach(document, items[index])
    del items[index]


@dataclass
class _Entry:
    body: list[Any]
    index: int
    item: Any
    header: bool = False
    end: int = 0


def _render_order(document: Any) -> list[_Entry]:
    """Every item of the document in the order it is rendered; a table is one entry (its header)."""
    entries: list[_Entry] = []

    def walk_table(body: list[Any], index: int, table: Table) -> None:
        entry = _Entry(body, index, table, header=not table.is_super_table())
        entries.append(entry)
        walk_body(table.value.body)
        entry.end = len(entries)

    def walk_body(body: list[Any]) -> None:
        for index, (_, item) in enumerate(body):
            if isinstance(item, Null):
                continue
            if isinstance(item, Table):
                walk_table(body, index, item)
            elif isinstance(item, AoT):
                for position, table in enumerate(item.body):
                    walk_table(item.body, position, table)
            else:
                entries.append(_Entry(body, index, item))

    walk_body(document.body)
    return entries


def _detach(document: Any, table: Table) -> None:
    """Before ``table`` is deleted: drop the comment lines right above its header (they describe it)
    and hand the comment lines at its end (they describe the next table) to the next table's header."""
    entries = _render_order(document)
    position = next((i for i, e in enumerate(entries) if e.item is table), None)
    if position is None:
        return
    entry = entries[position]
    # comments directly above the header (super tables render nothing, look through them)
    above = position - 1
    while above >= 0 and (
        isinstance(entries[above].item, Comment)
        or (isinstance(entries[above].item, Table) and not entries[above].header)
    ):
        above -= 1
    for attached in entries[above + 1 : position]:
        if isinstance(attached.item, Comment):
            attached.body[attached.index] = (None, Null())
    # comments ending the table's text
    tail: list[Any] = []
    last = entry.end - 1
    while last > position and isinstance(entries[last].item, Whitespace | Comment):
        tail.insert(0, entries[last].item)
        last -= 1
    while tail and isinstance(tail[0], Whitespace):
        tail.pop(0)
    if not tail:
        return
    moved = "".join(item.as_string() for item in tail)
    following = next((e for e in entries[entry.end :] if e.header), None)
    if following is not None:
        following.item.trivia.indent = moved + following.item.trivia.indent
        return
    before = entries[above] if above >= 0 else None
    if before is None:
        return
    if isinstance(before.item, Whitespace):
        before.body[before.index] = (None, Whitespace(before.item.as_string() + moved))
    elif hasattr(before.item, "trivia"):
        before.item.trivia.trail += moved
