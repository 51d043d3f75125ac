"""Config models as plain data for the services: validate a mapping into a model (failures name the
field), merge a partial update into a model's data (a masked secret sent back stays the real one),
dump a model for re-validation (secrets kept) or for a caller (secrets masked)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from ..config.diagnostics import Locator, items_from_validation_error
from ..config.secrets import MASK
from .result import ServiceFailure
from .types import jsonable

__all__ = ["deep_merge", "model_data", "public_data", "validate_model"]


def validate_model(model: type[BaseModel], data: Mapping[str, Any], where: str) -> Any:
    """``model(**data)`` or a failure naming ``where.field`` and what would be valid."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        items = items_from_validation_error(exc, model, Locator(), dict(data))
        message = "; ".join(f"{where}.{i.path}: {i.message}" if i.path else f"{where}: {i.message}"
                            for i in items)
        raise ServiceFailure(message, "invalid") from None


def deep_merge(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``changes``, nested mappings merged key by key."""
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        elif _masked_echo(out.get(key), value):
            continue  # a secret sent back as shown (GET, edit, PUT): keep the real one
        else:
            out[key] = value
    return out


def _masked_echo(current: Any, value: Any) -> bool:
    """Whether ``value`` is ``current`` (a secret, or a list of them) as :func:`public_data` shows it."""
    if isinstance(current, SecretStr):
        return isinstance(value, str) and MASK in value and value == str(current)
    if isinstance(current, list) and isinstance(value, list) and len(current) == len(value) and current:
        return any(isinstance(c, SecretStr) for c in current) and all(
            _masked_echo(c, v) if isinstance(c, SecretStr) else c == v for c, v in zip(current, value, strict=True))
    return False


def model_data(model: BaseModel) -> dict[str, Any]:
    """Python data of a model, secrets kept as ``SecretStr`` (for re-validation)."""
    return {name: getattr(model, name) if not isinstance(getattr(model, name), BaseModel)
            else model_data(getattr(model, name))
            for name in [*type(model).model_fields, *(model.model_extra or {})]}


def public_data(model: BaseModel) -> dict[str, Any]:
    """JSON data of a model with secrets masked."""
    return jsonable(model.model_dump(mode="json"))  # type: ignore[no-any-return]
