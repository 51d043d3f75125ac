"""Durations: a number of seconds, or a string such as ``"90s"``, ``"5m"``, ``"1h30m"``, ``"2d"``, ``"250ms"``.

Every TTL-like field of a config (TTLs, ``stale_ttl``, lock and connection timeouts) takes either form.
A number is seconds. A string is one or more ``<number><unit>`` parts, largest unit first, each unit at
most once, no spaces: units ``d`` (days), ``h`` (hours), ``m`` (minutes), ``s`` (seconds), ``ms``
(milliseconds); a part may have a fraction (``"1.5h"``).

>>> parse_duration("1h30m")
5400.0
>>> parse_duration("250ms")
0.25
>>> parse_duration("60") is None  # a bare number in a string is not a duration
True
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

__all__ = ["DURATION", "DURATION_FORMS", "DURATION_PATTERN", "Duration", "parse_duration"]

_NUMBER = r"[0-9]+(?:\.[0-9]+)?"
_UNITS = (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0), ("ms", 0.001))
#: The grammar of a duration string, as a regular expression (also the JSON Schema ``pattern``).
# (no look-arounds: editors check it with engines that have none; the empty string is refused apart)
DURATION_PATTERN = "^" + "".join(f"(?:({_NUMBER}){unit})?" for unit, _ in _UNITS) + "$"
_DURATION = re.compile(DURATION_PATTERN)
#: What error messages show as the valid forms.
DURATION_FORMS = 'a number of seconds or a duration such as "90s", "5m", "1h30m", "2d", "250ms"'


def parse_duration(text: str) -> float | None:
    """The seconds that ``text`` stands for, or ``None`` when it is not a duration string."""
    match = _DURATION.match(text)
    if match is None or not any(match.groups()):
        return None
    parts = zip(match.groups(), _UNITS, strict=True)
    return sum(float(part) * factor for part, (_, factor) in parts if part is not None)


def _from_duration(value: Any) -> Any:
    # A duration string becomes seconds; anything else goes on to the number validation (strict for
    # TOML, where "60" is refused, lax for environment variables, where "60" means 60 seconds).
    if isinstance(value, str):
        seconds = parse_duration(value)
        if seconds is not None:
            return seconds
    return value


class _Duration:
    """Marks a number of seconds that may also be written as a duration string.

    Put it after the number's constraints (``Annotated[float, Field(gt=0), DURATION]``): the
    string is turned into seconds first, then the number is validated with its constraints. JSON
    Schema: the number schema (with its bounds), or a string of the duration grammar.
    """

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_before_validator_function(_from_duration, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        number = handler(schema)
        examples = ["90s", "5m", "1h30m", "2d", "250ms"]
        text = {"type": "string", "minLength": 1, "pattern": DURATION_PATTERN, "examples": examples}
        return {"anyOf": [number, text]}

    def __repr__(self) -> str:
        return "DURATION"


#: The marker: ``Annotated[float, Field(gt=0), DURATION]`` also takes ``"90s"``, ``"5m"``...
DURATION = _Duration()
#: Seconds as a number, or a duration string; validates to a ``float`` of seconds.
Duration = Annotated[float, DURATION]
