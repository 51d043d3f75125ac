"""Config as code: TOML -> pydantic models (+ ``CACHEKIT_...`` environment overrides) -> runtime.

>>> from cachekit.config import parse_config
>>> parse_config('[cache]\\nprefix = "myapp"\\n', environ={}).cache.prefix
'myapp'
"""

from .checks import validate_config
from .durations import Duration, parse_duration
from .loader import load_config, parse_config
from .models import (
    BUILTIN_PROVIDER_TYPES,
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
    ProviderConfig,
    RedisProviderConfig,
    RegionConfig,
    RuleConfig,
    TimeBasedRule,
)
from .save import save_config
from .schema import json_schema

__all__ = [
    "BUILTIN_PROVIDER_TYPES",
    "BusConfig",
    "CacheConfig",
    "CacheSection",
    "CustomProviderConfig",
    "Duration",
    "EventBasedRule",
    "FileProviderConfig",
    "HttpConfig",
    "L1Config",
    "MemcachedProviderConfig",
    "MemoryProviderConfig",
    "PatternBasedRule",
    "ProviderConfig",
    "RedisProviderConfig",
    "RegionConfig",
    "RuleConfig",
    "TimeBasedRule",
    "json_schema",
    "load_config",
    "parse_config",
    "parse_duration",
    "save_config",
    "validate_config",
]
