"""The one definition of dangerous characters in untrusted text (stdlib only: the client uses it).

Tags, names and emails come from Lever and candidates type their own names. Some characters do
harm wherever they go, whatever the context:

- C0 and C1 controls (ANSI escapes, NUL, CR, LF, NEL U+0085, VT, FF...) and DEL: they move a
  terminal's cursor, split a log line or a CSV row;
- the line and paragraph separators U+2028 and U+2029: a new line to many readers;
- bidi controls (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C): they reorder what a
  reader sees ("Trojan Source"), so a tag or a log line can show something else than it holds;
- zero-width characters (U+200B-U+200D, U+2060, U+FEFF): two tags that look the same are not;
- lone surrogates (U+D800-U+DFFF): no UTF-8 encoder accepts them.

`DANGEROUS` is that set. The tag rule (`toolkit.sanitize.tag_problem`) refuses a tag holding
one; log lines and terminal text (`escaped`, `EscapingFormatter`) show each as a `\\x1b` or
`\\u202e` escape. Text read from Lever's JSON passes `clean_json` once, on the way in: a lone
surrogate (`"\\ud800"`) becomes U+FFFD and is counted, so nothing downstream (Parquet, CSV,
HTML) meets text it cannot encode.
"""

from __future__ import annotations

import logging
import re
from typing import Any

DANGEROUS_RANGES = (
    "\x00-\x1f\x7f-\x9f"  # C0, DEL, C1 (NEL is U+0085)
    "\u2028\u2029"  # line and paragraph separators
    "\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c"  # bidi controls
    "\u200b-\u200d\u2060\ufeff"  # zero-width characters
    "\ud800-\udfff"  # surrogates: never valid on their own in text
)
DANGEROUS = re.compile(f"[{DANGEROUS_RANGES}]")
DANGEROUS_DESCRIPTION = (
    "control characters (C0, C1, NEL), line or paragraph separators, bidi controls, "
    "zero-width characters or lone surrogates"
)
REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")
# A JSON text can only hold a lone surrogate as an escape: only such texts need the walk.
_JSON_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def first_dangerous(text: str) -> str | None:
    """The first dangerous character of `text`, or None.

    Example:
        >>> first_dangerous("Python"), first_dangerous("a\\u202eb"), first_dangerous("x\\x85")
        (None, '\\u202e', '\\x85')
    """
    match = DANGEROUS.search(text)
    return match.group() if match else None


def _escape(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


def escaped(text: Any) -> str:
    """`text` for a terminal or a log line: every dangerous character shown as an escape.

    Example:
        >>> escaped("red\\x1b[31m\\nnext\\u2028\\u202eevil\\u200b\\ud800")
        'red\\\\x1b[31m\\\\nnext\\\\u2028\\\\u202eevil\\\\u200b\\\\ud800'
    """
    return DANGEROUS.sub(_escape, str(text))


def replace_surrogates(text: str) -> tuple[str, int]:
    """`text` with each lone surrogate replaced by U+FFFD, and how many were replaced.

    Example:
        >>> replace_surrogates("bad\\ud800tag")
        ('bad\\ufffdtag', 1)
    """
    return _SURROGATE.subn(REPLACEMENT, text)


def clean_json(payload: Any, text: str | None = None) -> tuple[Any, int]:
    """`payload` (parsed JSON) with lone surrogates in its strings and keys replaced by U+FFFD.

    `text`, the JSON text it was parsed from, lets a payload without any `\\uD8xx`-`\\uDFxx`
    escape (nearly all of them) return at once, unwalked. Returns the payload and the number
    of strings changed.

    Example:
        >>> clean_json({"tags": ["ok", "bad\\ud800"], "n": 1})
        ({'tags': ['ok', 'bad�'], 'n': 1}, 1)
        >>> clean_json({"tags": ["ok"]}, '{"tags": ["ok"]}')
        ({'tags': ['ok']}, 0)
    """
    if text is not None and not _JSON_SURROGATE_ESCAPE.search(text):
        return payload, 0
    count = 0

    def walk(value: Any) -> Any:
        nonlocal count
        if isinstance(value, str):
            fixed, n = replace_surrogates(value)
            count += bool(n)
            return fixed
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            return {walk(k): walk(v) for k, v in value.items()}
        return value

    cleaned = walk(payload)
    return cleaned, count


class EscapingFormatter(logging.Formatter):
    """A log formatter whose lines never carry a dangerous character from their message.

    The message (often holding a tag, an id or an error from Lever) is escaped by `escaped`, so
    a log line stays one line and shows what it holds; tracebacks keep their own lines.

    Example:
        >>> record = logging.LogRecord("x", logging.WARNING, "", 0, "tag %s", ("a\\u2028b",), None)
        >>> EscapingFormatter("%(message)s").format(record)
        'tag a\\\\u2028b'
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escaped(record.message)
        return super().formatMessage(record)


__all__ = [
    "DANGEROUS",
    "DANGEROUS_DESCRIPTION",
    "REPLACEMENT",
    "EscapingFormatter",
    "clean_json",
    "escaped",
    "first_dangerous",
    "replace_surrogates",
]
