"""Check the workflow config at startup, with one short message per problem.

Snakemake parses ``--config key=value`` values as YAML with every scalar a string, so a nested
override such as ``--config fetch='{runs_per_batch: 100}'`` arrives as ``{"runs_per_batch":
"100"}``. :func:`check_config` first converts such strings to the type the schema asks for, then
validates (filling in defaults, as ``snakemake.utils.validate`` does) and, on error, raises
:class:`ConfigError` naming the key, the problem and the allowed keys or values: never the whole
schema.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

import yaml

__all__ = ["ConfigError", "check_config", "coerce_overrides"]

_TYPES: dict[str, type | tuple[type, ...]] = {
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "array": list,
    "object": dict,
}


class ConfigError(ValueError):
    """The workflow config does not follow ``workflow/schemas/config.schema.yaml``."""


def _coerce(value: Any, schema: Mapping[str, Any]) -> Any:
    kind = schema.get("type")
    if isinstance(value, str) and kind in _TYPES:
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        if isinstance(parsed, _TYPES[kind]) and not (kind in ("integer", "number") and isinstance(parsed, bool)):
            value = parsed
    if isinstance(value, MutableMapping) and "properties" in schema:
        coerce_overrides(value, schema)
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        value = [_coerce(item, schema["items"]) for item in value]
    return value


def coerce_overrides(config: MutableMapping[str, Any], schema: Mapping[str, Any]) -> None:
    """Convert, in place, string values of ``config`` to the integer, number, boolean, list or
    mapping the schema asks for (command-line overrides arrive as strings)."""
    properties = schema.get("properties", {})
    for key in list(config):
        if key in properties:
            config[key] = _coerce(config[key], properties[key])


def _describe(error: Any, schema: Mapping[str, Any]) -> str:
    """One line: where, what, and what is allowed there."""
    where = "/".join(str(p) for p in error.absolute_path) or "the config"
    sub: Mapping[str, Any] = schema
    for part in error.absolute_path:
        sub = sub.get("properties", {}).get(part, {}) if isinstance(part, str) else sub.get("items", {})
    message = f"config error at {where}: {error.message}"
    if error.validator == "additionalProperties":
        message += f". Allowed keys: {', '.join(sorted(sub.get('properties', {})))}"
    elif error.validator == "enum":
        message += f". Allowed values: {', '.join(map(str, error.validator_value))}"
    elif "description" in error.schema:
        message += f" ({' '.join(str(error.schema['description']).split())})"
    return message


def check_config(config: MutableMapping[str, Any], schema_path: str | Path) -> None:
    """Coerce command-line overrides, validate ``config`` against the schema and fill defaults.

    Raises :class:`ConfigError` with one line per problem (key, problem, allowed keys/values).
    """
    import jsonschema
    from snakemake.utils import validate

    schema = yaml.safe_load(Path(schema_path).read_text(encoding="utf-8"))
    coerce_overrides(config, schema)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise ConfigError("\n".join(_describe(e, schema) for e in errors))
    validate(config, str(schema_path))  # fills in the defaults
