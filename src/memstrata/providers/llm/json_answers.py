"""Reading a model's answer: a JSON object out of its text, checked against a small JSON-schema subset."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}


def _is_type(value: Any, name: str) -> bool:
    if name not in _TYPES:
        return True  # unknown type keywords are not ours to enforce
    # bool is an int subclass in Python, but JSON keeps them apart.
    if isinstance(value, bool) and name in ("number", "integer"):
        return False
    if name == "integer" and isinstance(value, float):
        return math.isfinite(value) and value.is_integer()
    return isinstance(value, _TYPES[name])


def validate_json(value: Any, schema: Mapping[str, Any], path: str = "$") -> list[str]:
    """Check ``value`` against a JSON-schema subset; return the problems found (empty list when valid).

    Supported keywords: ``type`` (a name or a list of names), ``enum``, ``properties``, ``required``
    and ``items``. Enough for the schemas memstrata sends, without a jsonschema dependency.
    """
    errors: list[str] = []
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(_is_type(value, n) for n in names):
            return [f"{path}: expected {' or '.join(names)}, got {_json_type(value)}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} is not one of {list(schema['enum'])}")
    if isinstance(value, dict):
        for key in schema.get("required", ()):
            if key not in value:
                errors.append(f"{path}: missing required key {key!r}")
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                errors.extend(validate_json(value[key], sub, f"{path}.{key}"))
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for i, item in enumerate(value):
            errors.extend(validate_json(item, schema["items"], f"{path}[{i}]"))
    return errors


def _json_type(value: Any) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _is_type(value, name):
            return name
    return type(value).__name__


def parse_json_object(text: str) -> dict[str, Any]:
    """Parse a model's text answer into a JSON object.

    Tolerates Markdown code fences and prose around the object, which small local models add even
    when asked not to. Raises ``ValueError`` when no JSON object can be read.
    """
    candidate = text.strip()
    if candidate.startswith("```"):
        candidate = candidate.split("\n", 1)[1] if "\n" in candidate else ""
        candidate = candidate.rsplit("```", 1)[0]
    try:
        value = json.loads(candidate)
    except ValueError:
        start, end = candidate.find("{"), candidate.rfind("}")
        if start < 0 or end <= start:
            raise ValueError("the answer contains no JSON object") from None
        try:
            value = json.loads(candidate[start : end + 1])
        except ValueError as exc:
            raise ValueError(f"the answer is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {_json_type(value)}")
    return value
