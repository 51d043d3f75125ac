"""Config as code: TOML -> pydantic models (+ ``CACHEKIT_...`` environment overrides) -> runtime.

>>> from cachekit.config import parse_config
>>> parse_config('[cache]\\nprefix = "myapp"\\n', environ={}).cache.prefix
'myapp'
"""

from .checks import validate_config
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
    "save_config",
    "validate_config",
]
