"""Shape checks: JSON Schema over loaded YAML, reported as `path:line:col`.

jsonschema knows the failing path (`error.absolute_path`) but not the line; the
marks from yamlmarks.py do. Its messages are also written for schema authors
("Additional properties are not allowed"), so each kind of failure is rewritten
for the person editing the list: which key, what was expected, and a fix
(with a did-you-mean for misspelt keys and enum values).

The schemas ship in `publisher/lists/schemas/` so that editors can use them too
(`# yaml-language-server: $schema=...`).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError

from publisher import codes
from publisher.errors import Problem
from publisher.lists.yamlmarks import Marks, Path, format_path

SCHEMAS = ("zones", "list")

_TYPE_NAMES = {
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}


@cache
def load_schema(name: str) -> dict[str, Any]:
    """One of the shipped schemas by short name ('zones' or 'list')."""
    text = resources.files("publisher.lists").joinpath("schemas", f"{name}.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator(name: str) -> jsonschema.protocols.Validator:
    schema = load_schema(name)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def check(instance: Any, marks: Marks, schema: str) -> list[Problem]:
    """Every schema violation of `instance`, located through `marks`, in file order."""
    return check_paths(instance, marks, schema)[0]


def check_paths(instance: Any, marks: Marks, schema: str) -> tuple[list[Problem], set[Path]]:
    """`check`, plus the paths of the values that failed (readers skip those items)."""
    errors = sorted(_validator(schema).iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path])
    unknown: dict[Path, list[str]] = {}
    for error in errors:
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            unknown[tuple(error.absolute_path)] = _unexpected(_schema_of(error), error.instance)
    problems: list[Problem] = []
    for error in errors:
        problems.extend(_rewrite(error, marks, unknown))
    # jsonschema reports `required` once per missing key but our rewrite names them all.
    unique = list(dict.fromkeys(problems))
    # An unknown key in an entry does not make it unreadable (readers ignore
    # unknown keys), so its other values are still checked and reported too.
    # In `defaults` it may be a misspelt default that every entry would miss.
    paths = {
        tuple(e.absolute_path)
        for e in errors
        if e.validator != "additionalProperties" or tuple(e.absolute_path)[:1] == ("defaults",)
    }
    return sorted(unique, key=lambda p: (p.location.line or 0, p.location.col or 0)), paths


def _schema_of(error: ValidationError) -> dict[str, Any]:
    return dict(error.schema) if isinstance(error.schema, Mapping) else {}


def _unexpected(schema: dict[str, Any], instance: dict[str, Any]) -> list[str]:
    allowed = schema.get("properties", {})
    return [k for k in instance if k not in allowed]


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def field_name(where: Path) -> str:
    """('zones', 0, 'sources', 1) -> 'sources[1]': the name a person sees in the file."""
    tail: list[str] = []
    for part in reversed(where):
        if isinstance(part, int):
            tail.insert(0, f"[{part}]")
            continue
        return part + "".join(tail)
    return format_path(where)


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _rewrite(error: ValidationError, marks: Marks, unknown: dict[Path, list[str]]) -> list[Problem]:
    where: Path = tuple(error.absolute_path)
    loc = marks.location(where)
    name = field_name(where)
    schema = _schema_of(error)
    fix: str | None = schema.get("x-fix")
    kind = error.validator
    value: Any = error.instance
    limit: Any = error.validator_value

    if kind == "additionalProperties" and isinstance(value, dict):
        allowed = sorted(schema.get("properties", {}))
        out = []
        for key in _unexpected(schema, value):
            guess = did_you_mean(key, allowed)
            hint = f"did you mean `{guess}`?" if guess else f"remove it; allowed here: {', '.join(allowed)}"
            where_text = "at the top level" if not where else f"in {format_path(where)}"
            out.append(
                Problem(
                    marks.location((*where, key), key=True),
                    codes.UNKNOWN_KEY,
                    f"unknown key `{key}` {where_text}",
                    hint,
                )
            )
        return out

    if kind == "required" and isinstance(value, dict):
        out = []
        props = schema.get("properties", {})
        for key in limit:
            if key in value or _explained_by_typo(key, unknown.get(where, [])):
                continue
            desc = props.get(key, {}).get("description")
            hint = f"add `{key}:`" + (f" ({desc})" if desc else "")
            out.append(
                Problem(loc, codes.MISSING_KEY, f"{format_path(where)} is missing the required key `{key}`", hint)
            )
        return out

    if kind == "type":
        if not where:
            return [
                Problem(
                    loc,
                    codes.NOT_A_MAPPING,
                    f"the file must be a mapping of keys, not {_TYPE_NAMES.get(json_type(value), json_type(value))}",
                    "start with the top-level keys (see the schema named in the first comment line)",
                )
            ]
        raw = limit
        wanted: list[str] = [str(t) for t in raw] if isinstance(raw, list) else [str(raw)]
        expected = " or ".join(_TYPE_NAMES.get(t, t) for t in wanted)
        got = _TYPE_NAMES.get(json_type(value), json_type(value))
        if fix is None and "string" in wanted and not isinstance(value, (dict, list)):
            fix = f'quote the value: "{value}"'
        elif fix is None and wanted == ["boolean"]:
            fix = "write true or false"
        elif fix is None and isinstance(value, str) and set(wanted) & {"integer", "number"} and _numeric(value):
            fix = f"remove the quotes: {value.strip()}"
        elif fix is None:
            fix = f"write {expected} here"
        return [Problem(loc, codes.WRONG_TYPE, f"`{name}` must be {expected}, not {got} ({_shown(value)})", fix)]

    if kind == "enum":
        choices = [str(c) for c in limit]
        guess = did_you_mean(str(value), choices)
        hint = f"did you mean `{guess}`?" if guess else f"use one of: {', '.join(choices)}"
        return [
            Problem(
                loc,
                codes.BAD_VALUE,
                f"{_shown(value)} is not a valid `{name}`; it is one of: {', '.join(choices)}",
                hint,
            )
        ]

    if kind in ("oneOf", "anyOf") and not isinstance(value, dict) and schema.get("type") == "object":
        return []  # the `type` error on the same value says it better

    if kind in ("oneOf", "anyOf") and isinstance(value, dict):
        names = [r for sub in limit for r in sub.get("required", [])]
        present = [n for n in names if n in value]
        if not present and any(_explained_by_typo(n, unknown.get(where, [])) for n in names):
            return []
        message = schema.get("x-message", error.message)
        if len(present) > 1:
            message = f"{format_path(where)} has both " + " and ".join(f"`{n}`" for n in present) + "; " + message
        else:
            message = f"{format_path(where)}: {message}"
        return [Problem(loc, codes.MISSING_KEY if not present else codes.BAD_VALUE, message, fix)]

    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        words = {
            "minimum": "at least",
            "maximum": "at most",
            "exclusiveMinimum": "more than",
            "exclusiveMaximum": "less than",
        }
        bound = f"{words[kind]} {limit}"
        return [
            Problem(
                loc, codes.BAD_VALUE, f"`{name}` must be {bound}, not {_shown(value)}", fix or f"use a value {bound}"
            )
        ]

    if kind in ("minItems", "minLength"):
        what = "list" if kind == "minItems" else "text"
        if limit == 1:
            return [
                Problem(
                    loc,
                    codes.BAD_VALUE,
                    f"`{name}` must not be empty",
                    fix or f"give at least one {'item' if what == 'list' else 'character'}",
                )
            ]
        return [Problem(loc, codes.BAD_VALUE, f"`{name}` is too short (at least {limit})", fix or "add to it")]

    if kind in ("maxLength", "maxItems"):
        size = f"{len(value)} characters" if kind == "maxLength" else f"{len(value)} items"
        return [Problem(loc, codes.TOO_LONG, f"`{name}` is {size} long; the limit is {limit}", fix or "shorten it")]

    if kind in ("pattern", "oneOf", "anyOf") and "x-message" in schema:
        return [Problem(loc, codes.BAD_VALUE, f"`{name}` {schema['x-message']}", fix or "remove it; write plain text")]

    # jsonschema's message quotes the value in full: never echo a huge one
    message = error.message if len(error.message) <= 200 else error.message[:197] + "..."
    return [Problem(loc, codes.SCHEMA, f"`{name}`: {message}", fix or "see the schema named in the file's first line")]


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _explained_by_typo(missing: str, unknown_keys: list[str]) -> bool:
    """A missing `ip` next to an unknown `ipp` is one mistake: report only the typo."""
    return any(did_you_mean(k, [missing]) for k in unknown_keys)
