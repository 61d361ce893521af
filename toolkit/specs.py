"""The files and values a user writes, each declared once as a JSON Schema and checked by
`jsonschema` (it arrives with nbformat): the policy file, batch files and notebook parameters.

A schema node may carry two annotations for the messages: ``x-must`` (what a value must be, in
words) and ``x-example``. `problems` turns jsonschema's errors into one line each, naming the key
and the fix, in one of two styles: ``file`` (``key 'x' must be ...; got a string 'y'``) and
``parameters`` (``x must be ..., got str 'y'``, the style of ``lever-tags report -p``).
"""

from __future__ import annotations

import difflib
import functools
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from toolkit.enums import MODES
from toolkit.errors import ConfigurationError
from toolkit.sanitize import MAX_TAG_LENGTH, short_repr, tag_problem

if TYPE_CHECKING:  # jsonschema itself loads on first use (see _validator_class)
    from jsonschema.exceptions import ValidationError

_TAG: dict[str, Any] = {
    "type": "string",
    "format": "tag",
    "x-must": f"a non-empty tag string (<= {MAX_TAG_LENGTH} characters)",
}

POLICY: dict[str, Any] = {
    "type": "object",
    "x-must": "a mapping with keys version, contact_level, never_touch, include_archived, "
    "skip_anonymized, on_removal",
    "additionalProperties": False,
    "properties": {
        "version": {"const": 1, "x-must": "1 (the only policy format so far)"},
        "contact_level": {
            "type": ["array", "null"],
            "items": {
                "anyOf": [
                    _TAG,
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["tag"],
                        "properties": {
                            "tag": _TAG,
                            "aliases": {"type": "array", "items": _TAG},
                            "normalize": {"type": "boolean"},
                        },
                    },
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["pattern"],
                        "properties": {"pattern": _TAG},
                    },
                ],
                "x-must": "a tag string, a family {tag: T, aliases: [A, ...], normalize: "
                'true|false} or a pattern {pattern: "Skill: *"}',
            },
            "x-must": "a list of tags, families {tag, aliases, normalize} or patterns {pattern}",
            "x-example": 'contact_level: ["Python", {tag: "Do not contact", aliases: ["DNC"]}]',
        },
        "never_touch": {
            "type": ["array", "null"],
            "items": _TAG,
            "x-must": "a list of tag strings",
            "x-example": 'never_touch: ["interview", "offer"]',
        },
        "include_archived": {"type": "boolean", "x-must": "true or false"},
        "skip_anonymized": {"type": "boolean", "x-must": "true or false"},
        "on_removal": {"enum": ["report", "propagate"], "x-must": "report or propagate"},
    },
}

RUN_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
BATCH: dict[str, Any] = {
    "type": "object",
    "x-must": "a mapping with a 'runs' list",
    "additionalProperties": False,
    "required": ["runs"],
    "properties": {
        "parallel_audits": {
            "type": "integer",
            "minimum": 1,
            "maximum": 16,
            "x-must": "an integer 1..16",
        },
        "fail_on_gaps": {"type": "boolean", "x-must": "true or false"},
        "notify": {
            "type": ["string", "null"],
            "x-must": "an https:// incoming-webhook URL, or env:NAME to read it from there",
        },
        "runs": {
            "type": "array",
            "minItems": 1,
            "x-must": "a non-empty list of runs (name, notebook, parameters)",
            "items": {
                "type": "object",
                "x-must": "a mapping with name, notebook",
                "additionalProperties": False,
                "required": ["name", "notebook"],
                "properties": {
                    "name": {
                        "type": "string",
                        "pattern": RUN_NAME,
                        "x-must": "letters, digits, '.', '_' or '-' (no spaces or slashes)",
                    },
                    "notebook": {"type": "string", "x-must": "a notebook name or path"},
                    "profile": {
                        "type": "string",
                        "pattern": RUN_NAME,
                        "x-must": "a profile name from the profiles file (LEVER_PROFILES)",
                    },
                    "parameters": {
                        "type": ["object", "null"],
                        "x-must": "a mapping of parameter names to values",
                    },
                },
            },
        },
    },
}

_ENV_NAME: dict[str, Any] = {
    "type": "string",
    "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$",
    "x-must": "the NAME of an environment variable (the secret stays in the environment)",
}
PROFILES: dict[str, Any] = {
    "type": "object",
    "x-must": "a mapping with a 'profiles' mapping",
    "additionalProperties": False,
    "required": ["profiles"],
    "properties": {
        "profiles": {
            "type": "object",
            "minProperties": 1,
            "x-must": "a mapping of profile names to their settings",
            "propertyNames": {"pattern": RUN_NAME},
            "additionalProperties": {
                "type": "object",
                "x-must": "a mapping (key_env, base_url, policy, reports, ledger, sync)",
                "additionalProperties": False,
                "properties": {
                    "key_env": _ENV_NAME,
                    "token_env": _ENV_NAME,
                    "base_url_env": _ENV_NAME,
                    "base_url": {"type": "string", "x-must": "an https:// API root"},
                    "policy": {"type": "string", "x-must": "a policy file path"},
                    "reports": {"type": "string", "x-must": "a folder path"},
                    "ledger": {"type": "string", "x-must": "a ledger file path"},
                    "sync": {
                        "type": "object",
                        "x-must": "a mapping with listen (HOST:PORT) and journal",
                        "additionalProperties": False,
                        "properties": {
                            "listen": {"type": "string", "x-must": "HOST:PORT"},
                            "journal": {"type": "string", "x-must": "a journal file path"},
                        },
                    },
                },
            },
        },
    },
}

_PATH: dict[str, Any] = {"type": "string", "x-must": "a path (or empty)", "x-path": True}
_FLAG: dict[str, Any] = {"type": "boolean", "x-must": "true or false"}
PARAMETERS: dict[str, Any] = {
    "type": "object",
    "x-style": "parameters",
    "properties": {
        "snapshot_path": {**_PATH, "x-input": True},
        "previous_snapshot": {**_PATH, "x-input": True},
        "keep_snapshot": _FLAG,
        "output_dir": _PATH,
        "policy_path": {**_PATH, "x-input": True},
        "journal_path": _PATH,
        "include_archived": _FLAG,
        "with_personal": _FLAG,
        "redact": _FLAG,
        "dry_run": _FLAG,
        "retry_failed": _FLAG,
        "tags": {
            "type": "array",
            "items": _TAG,
            "x-must": f"a list of non-empty tag strings (<= {MAX_TAG_LENGTH} chars)",
        },
        "renames": {
            "type": "object",
            "propertyNames": _TAG,
            "additionalProperties": _TAG,
            "x-must": "a mapping of old tag -> new tag (tags as for `tags`)",
        },
        "mode": {"enum": list(MODES), "x-must": "one of " + ", ".join(MODES)},
        "max_changes": {"type": "integer", "minimum": 0, "x-must": "an integer >= 0"},
        "top": {"type": "integer", "minimum": 1, "x-must": "an integer >= 1"},
        "min_opportunities": {"type": "integer", "minimum": 1, "x-must": "an integer >= 1"},
        "search": {"type": "string", "x-must": "a string"},
        "perform_as": {
            "type": "string",
            "pattern": r"^(\S(.*\S)?)?$",
            "x-must": "a Lever user id (or empty)",
        },
    },
}
PATH_PARAMETERS = tuple(k for k, v in PARAMETERS["properties"].items() if v.get("x-path"))
INPUT_PATH_PARAMETERS = tuple(k for k, v in PARAMETERS["properties"].items() if v.get("x-input"))


def _is_tag(value: object) -> bool:
    return not isinstance(value, str) or tag_problem(value) is None  # the one tag rule


def short(value: Any, limit: int = 60) -> str:
    """A one-line, bounded repr of a value for an error message.

    Example:
        >>> short("x" * 100)[-5:]
        'xx...'
    """
    text = short_repr(value).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def kind_of(value: Any) -> str:
    """A value's kind in words, as a YAML user thinks of it.

    Example:
        >>> kind_of("x"), kind_of(None), kind_of([1])
        ('a string', 'nothing (null)', 'a list')
    """
    if value is None:
        return "nothing (null)"
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    names.update({list: "a list", dict: "a mapping"})
    return names.get(type(value), type(value).__name__)


def _where(path: Iterable[Any], schema: Mapping[str, Any]) -> str:
    """`key 'x'`, `key 'x' item 2`, `run 1: key 'name'` for a path into the data."""
    parts: list[str] = []
    node = schema
    for step in path:
        if isinstance(step, int) and node is BATCH["properties"]["runs"]:
            parts[-1] = f"run {step + 1}:"  # not "key 'runs' item 1"
            node = node.get("items", {})
        elif isinstance(step, int):
            parts.append(f"item {step + 1}")
            node = node.get("items", {})
        else:
            parts.append(f"key '{step}'")
            node = node.get("properties", {}).get(step, {})
    return " ".join(parts).removesuffix(":")


@functools.cache
def _validator_class() -> type:
    # jsonschema is imported on first use, and without its optional `rfc3987_syntax` (installed
    # beside jupyter_events): jsonschema's format module builds that package's URI grammars at
    # import (0.8 s on a quiet machine, 4 s on a busy one), for URI formats no schema here uses.
    # A None in sys.modules makes that one import fail, which jsonschema expects; the entry is
    # removed afterwards so any later importer gets the real package.
    blocked = "rfc3987_syntax" not in sys.modules and "jsonschema" not in sys.modules
    if blocked:
        sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]
    try:
        from jsonschema import Draft202012Validator  # on first use: see above
    finally:
        if blocked:
            del sys.modules["rfc3987_syntax"]
    return Draft202012Validator


@functools.cache
def _format_checker() -> Any:
    from jsonschema import FormatChecker  # see _validator_class: loaded on first use

    checker = FormatChecker(formats=())
    checker.checks("tag")(_is_tag)
    return checker


def _message(error: ValidationError, schema: Mapping[str, Any], data: Any) -> str:
    style = schema.get("x-style", "file")
    # the failing subschema: always a mapping in our specs (jsonschema also allows a bool)
    rule: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    path = list(error.absolute_path)
    value: Any = error.instance  # the data that failed (jsonschema types it loosely)
    if error.validator == "additionalProperties":
        allowed = list(rule.get("properties", {}))
        extra = [k for k in value if k not in allowed]
        bad = str(extra[0]) if extra else "?"
        close = difflib.get_close_matches(bad, allowed, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        where = _where(path, schema)
        prefix = f"{where}: " if where else ""
        prefix = prefix.replace(":: ", ": ")
        return f"{prefix}unknown key {bad}: {hint}allowed keys are {', '.join(allowed)}"
    if error.validator == "required":
        where = _where(path, schema)
        missing = error.message.split("'")[1] if "'" in error.message else "?"
        return f"{where + ': ' if where else ''}'{missing}' is required".replace(":: ", ": ")
    must = rule.get("x-must", "valid")
    if style == "parameters":
        name = str(path[0]) if path else "parameters"
        must = schema["properties"].get(name, {}).get("x-must", must)
        value = data.get(name) if path and isinstance(data, Mapping) else value
        return f"{name} must be {must}, got {type(value).__name__} {short_repr(value)}"
    if not path:
        return f"the top level must be {must}; got {kind_of(value)}"
    listed = "array" in str(rule.get("type"))
    if isinstance(value, str) and error.validator == "type" and listed:
        got = "one string"
    else:
        got = kind_of(value) + ("" if value is None else f" {short(value)}")
    example = rule.get("x-example")
    text = f"{_where(path, schema)} must be {must}"
    if example:
        text += f", e.g. {example}"
    if isinstance(path[-1], int) and isinstance(value, bool | int | float):
        got += f' (quote it in the YAML: "{value}")'
    return f"{text}; got {got}"


def problems(data: Any, schema: Mapping[str, Any]) -> list[str]:
    """Everything wrong with `data` against `schema`, one line each (empty when nothing).

    Example:
        >>> problems({"version": 1, "include_archived": "yes"}, POLICY)
        ["key 'include_archived' must be true or false; got a string 'yes'"]
        >>> problems({"dry_run": "no"}, PARAMETERS)
        ["dry_run must be true or false, got str 'no'"]
    """
    validator = _validator_class()(schema, format_checker=_format_checker())
    errors = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.path])
    return [_message(error, schema, data) for error in errors]


def check(data: Any, schema: Mapping[str, Any], source: str) -> None:
    """Raise one ConfigurationError, `<source>: <first problem>`, when `data` does not fit."""
    found = problems(data, schema)
    if found:
        raise ConfigurationError(f"{source}: {found[0]}")
