"""Saving a live config back into its TOML file: only what changed is rewritten; comments survive."""

from __future__ import annotations

import difflib
import os
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from cachekit.config import (
    CacheConfig,
    L1Config,
    MemoryProviderConfig,
    PatternBasedRule,
    RegionConfig,
    load_config,
    save_config,
)
from cachekit.config.checks import config_data
from cachekit.errors import ConfigError

APP = """\
# cachekit config of the shop  (top comment)
[cache]
prefix = "shop"            # namespace for every key
default_ttl = 300

# the local store
[providers.local]
type = "memory"
max_size = 10_000   # entries

[providers.redis]
type = "redis"
url = "redis://localhost:6379/0"   # the shared one
password = "from-file"
connect_timeout = 1.5

[regions.user-profiles]
provider = "redis"
ttl = 600          # ten minutes
l1 = { provider = "local", ttl = 30 }  # inline L1

[regions.sessions]
provider = "local"
ttl = 60

# invalidate users on update
[[rules]]
name = "user-update-rule"
strategy = "event_based"
events = ["user_updated"]
pattern = "user:{user_id}"

# about the reports rule
[[rules]]
name = "reports"
strategy = "pattern_based"
pattern = "report:*"
"""


@pytest.fixture
def app_file(tmp_path: Path) -> Path:
    path = tmp_path / "app.toml"
    path.write_text(APP)
    return path


def diff(before: str, after: str) -> list[str]:
    return [
        line for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def test_editing_one_ttl_changes_exactly_that_line(app_file: Path) -> None:
    config = load_config(app_file, environ={})
    config.regions["user-profiles"].ttl = 42
    save_config(config)
    assert diff(APP, app_file.read_text()) == [
        "-ttl = 600          # ten minutes",
        "+ttl = 42          # ten minutes",
    ]


def test_saving_an_unchanged_config_rewrites_nothing(app_file: Path) -> None:
    config = load_config(app_file, environ={})
    save_config(config)
    assert app_file.read_text() == APP


def test_values_equal_to_the_file_are_not_rewritten(app_file: Path) -> None:
    config = load_config(app_file, environ={})
    config.providers["local"].max_size = 10000  # the file spells it 10_000
    config.regions["user-profiles"].ttl = 600.0  # the file spells it 600
    save_config(config)
    assert app_file.read_text() == APP


def test_a_float_in_the_file_stays_a_float_and_a_whole_number_is_written_as_int(app_file: Path) -> None:
    config = load_config(app_file, environ={})
    config.providers["redis"].connect_timeout = 2
    config.regions["sessions"].ttl = 90.0
    save_config(config)
    assert diff(APP, app_file.read_text()) == [
        "-connect_timeout = 1.5",
        "+connect_timeout = 2.0",
        "-ttl = 60",
        "+ttl = 90",
    ]


def test_env_values_are_not_written_and_env_secrets_never(app_file: Path) -> None:
    env = {
        "CACHEKIT_REGIONS__SESSIONS__TTL": "5",
        "CACHEKIT_PROVIDERS__REDIS__PASSWORD": "from-env",
        "CACHEKIT_HTTP__TOKEN": "env-token",
    }
    config = load_config(app_file, environ=env)
    assert config.regions["sessions"].ttl == 5.0
    assert config.providers["redis"].password == SecretStr("from-env")
    config.regions["user-profiles"].ttl = 42
    save_config(config)
    text = app_file.read_text()
    assert diff(APP, text) == ["-ttl = 600          # ten minutes", "+ttl = 42          # ten minutes"]
    assert "from-env" not in text and "env-token" not in text
    assert 'password = "from-file"' in text


def test_a_secret_changed_in_code_is_written(app_file: Path) -> None:
    config = load_config(app_file, environ={})
    config.providers["redis"].password = SecretStr("rotated")
    save_config(config)
    assert diff(APP, app_file.read_text()) == ['-password = "from-file"', '+password = "rotated"']


def test_added_and_removed_entries_become_tables_and_comments_of_others_survive(app_file: Path) -> None:
    config = load_config(app_file, environ={})
    config.providers["small"] = MemoryProviderConfig(max_size=100)
    config.regions["carts"] = RegionConfig(provider="small", ttl=120, l1=L1Config(provider="local", ttl=5))
    del config.regions["sessions"]
    config.rules.append(PatternBasedRule(name="carts-flush", pattern="cart:*", regions=["carts"]))
    save_config(config)
    text = app_file.read_text()

    assert "[regions.sessions]" not in text
    assert '[providers.small]\ntype = "memory"\nmax_size = 100\n' in text
    assert '[regions.carts]\nprovider = "small"\nttl = 120\nl1 = {provider = "local", ttl = 5}\n' in text
    assert text.endswith(
        '[[rules]]\nname = "carts-flush"\nstrategy = "pattern_based"\nregions = ["carts"]\npattern = "cart:*"\n'
    )
    for line in APP.splitlines():  # every comment of the file is still there
        if "#" in line:
            assert line in text
    assert config_data(load_config(app_file, environ={})) == config_data(config)


def test_deleting_a_rule_drops_its_own_comment_and_keeps_the_next_ones(app_file: Path) -> None:
    config = load_config(app_file, environ={})
    config.rules.pop(0)
    save_config(config)
    text = app_file.read_text()
    assert "# invalidate users on update" not in text
    assert "user-update-rule" not in text
    assert '# about the reports rule\n[[rules]]\nname = "reports"' in text
    assert [r.name for r in load_config(app_file, environ={}).rules] == ["reports"]


def test_deleting_every_rule_removes_the_array(app_file: Path) -> None:
    config = load_config(app_file, environ={})
    config.rules.clear()
    save_config(config)
    assert "[[rules]]" not in app_file.read_text()
    assert load_config(app_file, environ={}).rules == []


def test_renaming_a_rule_edits_it_in_place(app_file: Path) -> None:
    config = load_config(app_file, environ={})
    config.rules[0].name = "users-changed"
    save_config(config)
    assert diff(APP, app_file.read_text()) == ['-name = "user-update-rule"', '+name = "users-changed"']


def test_none_removes_an_optional_key_and_is_refused_where_none_is_not_the_default(app_file: Path) -> None:
    config = load_config(app_file, environ={})
    config.regions["sessions"].ttl = None
    save_config(config)
    assert diff(APP, app_file.read_text()) == ["-ttl = 60"]

    config.cache.default_ttl = None
    with pytest.raises(ConfigError, match=r"cache\.default_ttl"):
        save_config(config)


def test_region_replaced_by_a_copy_like_the_runtime_does_is_saved(app_file: Path) -> None:
    config = load_config(app_file, environ={})
    copy = config.regions["sessions"].model_copy()
    copy.ttl = 15
    config.regions["sessions"] = copy
    save_config(config)
    assert diff(APP, app_file.read_text()) == ["-ttl = 60", "+ttl = 15"]


def test_an_invalid_config_is_not_saved(app_file: Path) -> None:
    config = load_config(app_file, environ={})
    config.regions["sessions"].provider = "nowhere"
    with pytest.raises(ConfigError) as info:
        save_config(config)
    assert info.value.errors[0].path == "regions.sessions.provider"
    assert app_file.read_text() == APP


def test_save_is_atomic_keeps_the_file_mode_and_leaves_no_temp_file(app_file: Path) -> None:
    app_file.chmod(0o640)
    config = load_config(app_file, environ={})
    config.cache.prefix = "shop2"
    save_config(config)
    assert stat.S_IMODE(app_file.stat().st_mode) == 0o640
    assert sorted(os.listdir(app_file.parent)) == ["app.toml"]


def test_saving_to_another_path_leaves_the_original_and_moves_source_path(app_file: Path, tmp_path: Path) -> None:
    config = load_config(app_file, environ={})
    config.cache.prefix = "copy"
    target = tmp_path / "sub" / "copy.toml"
    assert save_config(config, target) == target
    assert app_file.read_text() == APP
    assert config.source_path == target.resolve()
    assert diff(APP, target.read_text()) == [
        '-prefix = "shop"            # namespace for every key',
        '+prefix = "copy"            # namespace for every key',
    ]


def test_second_save_only_writes_the_second_change(app_file: Path) -> None:
    config = load_config(app_file, environ={})
    config.regions["sessions"].ttl = 61
    save_config(config)
    first = app_file.read_text()
    config.regions["sessions"].lock = True
    save_config(config)
    assert diff(first, app_file.read_text()) == ["+lock = true"]


def test_crlf_line_endings_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "win.toml"
    path.write_bytes(b"# windows\r\n[regions.users]\r\nttl = 60 # one minute\r\n")
    config = load_config(path, environ={})
    config.regions["users"].ttl = 30
    save_config(config)
    assert path.read_bytes() == b"# windows\r\n[regions.users]\r\nttl = 30 # one minute\r\n"


def test_out_of_order_tables_are_edited_in_place(tmp_path: Path) -> None:
    text = '[regions.a]\nttl = 1\n\n[providers.p]\ntype = "memory"\n\n# about b\n[regions.b]\nttl = 2\n'
    path = tmp_path / "ooo.toml"
    path.write_text(text)
    config = load_config(path, environ={})
    config.regions["b"].ttl = 3
    del config.regions["a"]
    save_config(config)
    assert path.read_text() == '[providers.p]\ntype = "memory"\n\n# about b\n[regions.b]\nttl = 3\n'


def test_inline_array_of_rules_is_edited_and_extended(tmp_path: Path) -> None:
    path = tmp_path / "inline.toml"
    path.write_text('rules = [{name = "a", strategy = "pattern_based", pattern = "a:*"}]  # rules\n')
    config = load_config(path, environ={})
    config.rules[0].pattern = "b:*"
    config.rules.append(PatternBasedRule(name="c", pattern="c:*"))
    save_config(config)
    reloaded = load_config(path, environ={})
    assert [(r.name, r.pattern) for r in reloaded.rules] == [("a", "b:*"), ("c", "c:*")]
    assert path.read_text().endswith("  # rules\n")


def test_config_without_a_file_needs_a_path(tmp_path: Path) -> None:
    config = CacheConfig(regions={"users": {"ttl": 60}})
    with pytest.raises(ConfigError, match="pass a path"):
        save_config(config)


def test_config_without_a_file_is_written_as_its_non_default_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CACHEKIT_HTTP__TOKEN", "env-token")
    config = CacheConfig(
        cache={"prefix": "fresh"},
        providers={"r": {"type": "redis", "port": 6380}},
        regions={"users": {"provider": "r", "ttl": 60, "l1": {"provider": "memory"}}},
        rules=[{"name": "u", "strategy": "pattern_based", "pattern": "u:*"}],
    )
    path = tmp_path / "fresh.toml"
    save_config(config, path)
    assert path.read_text() == (
        '[cache]\nprefix = "fresh"\n\n'
        '[providers.r]\ntype = "redis"\nport = 6380\n\n'
        '[regions.users]\nprovider = "r"\nttl = 60\nl1 = {provider = "memory"}\n\n'
        '[[rules]]\nname = "u"\nstrategy = "pattern_based"\npattern = "u:*"\n'
    )
    assert config.source_path == path.resolve()
    reloaded, live = config_data(load_config(path, environ={})), config_data(config)
    assert reloaded.pop("http") == {"token": None, "admin_token": None,  # the env token was not written
                                    "allowed_hosts": ["127.0.0.1", "::1", "localhost"], "file_root": None,
                                    "adhoc_regions": False}
    live.pop("http")
    assert reloaded == live
