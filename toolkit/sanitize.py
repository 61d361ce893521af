"""Untrusted text meets spreadsheets, terminals, files and YAML: the rules in one place.

Tags, names and emails come from Lever, and candidates type their own names, so every string may
be hostile. This module holds the small pure rules the rest of the toolkit applies:

- CSV cells (`csv_cell`, `csv_uncell`, `csv_safe_frame`): the OWASP rule against CSV injection.
  A text cell that begins with `=`, `+`, `-`, `@`, tab, CR or LF gets a leading `'`, so a
  spreadsheet shows it as text instead of running it as a formula. A reader may also start a
  cell or a row inside a cell: at a line break (a bare CR, NEL, U+2028...) or at a separator
  another dialect uses (`;`, tab, `,`): `SEPARATORS`. So the same `'` goes after each of those
  too: `Senior\\r=2+5` is written `Senior\\r'=2+5`, and no reader finds a cell starting `=2+5`
  (the writers also quote every cell holding one of them: `toolkit.csvout`). The rule is
  reversible: where a `'` already stands before one of those starts (or before another `'`),
  one more `'` goes in, and `csv_uncell` strips exactly one at each such place. So
  `csv_uncell(csv_cell(s)) == s` for every string, which is how `plan.csv` stays both safe to
  open and exact for `apply`.
- Terminal text (`printable`): the dangerous characters of `toolkit.chars` (ANSI escapes, NUL,
  newlines, C1, bidi and zero-width characters) shown as `\\x1b`-style escapes, never sent raw.
- Tags (`tag_problem`, `check_tag`): what the toolkit will write to Lever: non-empty after
  stripping, none of `toolkit.chars.DANGEROUS` (the one definition log lines share), at most
  `MAX_TAG_LENGTH` characters.
- Private files (`private_dir`, `private_file`): 0700 folders and 0600 files, whatever the umask.
- YAML (`safe_yaml_load`): `yaml.safe_load` without aliases (`&a`/`*a`), so a "billion laughs"
  value cannot expand to gigabytes.
"""

from __future__ import annotations

import os
import re
import reprlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from toolkit.chars import DANGEROUS_DESCRIPTION, REPLACEMENT, escaped, first_dangerous
from toolkit.errors import ConfigurationError

# OWASP CSV injection: cells beginning with these are formulas to a spreadsheet. LF is added:
# some spreadsheets skip a leading newline and read what follows.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
CSV_ESCAPE = "'"
# Where a reader may start a new cell or row inside a cell: line breaks of every kind (those of
# str.splitlines: CR, LF, VT, FF, FS, GS, RS, NEL, U+2028, U+2029), the separators of other CSV
# dialects (`;` in locales with a decimal comma, tab), the comma itself, and NUL.
SEPARATORS = ",;\t\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\x00"
_SEP = re.escape(SEPARATORS)
_STARTS = re.escape("".join(FORMULA_STARTS))
# A place needing the escape: the start of the cell or just after a separator, where a formula
# start follows, or a `'` already escaping one (or another `'`).
_NEEDS_ESCAPE = re.compile(f"(?:^|(?<=[{_SEP}]))(?=[{_STARTS}]|'[{_STARTS}'])")
_ESCAPED = re.compile(f"(?:^|(?<=[{_SEP}]))'(?=[{_STARTS}'])")
# A quick test first: only a cell starting with a formula character or `'`, or holding a
# separator at all, can need the escape (nearly every cell is neither).
_ANY_SEPARATOR = re.compile(f"[{_SEP}]")
_FIRST = frozenset((*FORMULA_STARTS, CSV_ESCAPE))

# Lever documents no maximum tag length. Real tags are words or short phrases (posting titles,
# teams, locations, skills: the sandbox's longest is under 40 characters); 255 characters is the
# usual width of a text column and far above any tag a person types, while a 100,000-character
# "tag" is an attack or a corrupted file. Longer tags are refused before any write.
MAX_TAG_LENGTH = 255

_repr = reprlib.Repr()
_repr.maxstring = 80
_repr.maxother = 80
_repr.maxlist = _repr.maxdict = _repr.maxtuple = _repr.maxset = 6
_repr.maxlevel = 3


def short_repr(value: Any) -> str:
    """A bounded `repr` (at most about 80 characters per string, 6 items, 3 levels).

    Example:
        >>> short_repr("x" * 1000)[:12], len(short_repr(list(range(10**6)))) < 60
        ("'xxxxxxxxxxx", True)
    """
    text = _repr.repr(value)
    return text if len(text) <= 160 else text[:159] + "…"


def csv_cell(value: Any) -> Any:
    """A cell value made safe for a spreadsheet (OWASP), reversibly; non-strings unchanged.

    Example:
        >>> csv_cell("=HYPERLINK(\\"http://x\\")"), csv_cell("Python"), csv_cell(-1)
        ('\\'=HYPERLINK("http://x")', 'Python', -1)
        >>> csv_cell("'=1"), csv_cell("'quoted")
        ("''=1", "'quoted")
        >>> csv_cell("Senior\\r=2+5"), csv_cell("a;@b"), csv_cell("a; -b")
        ("Senior\\r'=2+5", "a;'@b", 'a; -b')
    """
    if not isinstance(value, str) or not value:
        return value
    if value[0] not in _FIRST and not _ANY_SEPARATOR.search(value):
        return value
    return _NEEDS_ESCAPE.sub(CSV_ESCAPE, value)


def csv_uncell(value: Any) -> Any:
    """The exact value a `csv_cell` cell stands for (strips each escaping `'`).

    Example:
        >>> [csv_uncell(csv_cell(s)) for s in ["=1", "'=1", "''", "'x", "-", "'", "a;'=b"]]
        ['=1', "'=1", "''", "'x", '-', "'", "a;'=b"]
    """
    if isinstance(value, str) and CSV_ESCAPE in value:
        return _ESCAPED.sub("", value)
    return value


def csv_safe_frame(frame: Any) -> Any:
    """A copy of a DataFrame whose text cells (and column names) pass `csv_cell`.

    Numeric columns are left alone (a negative number is a number, not a formula); categorical
    columns (the audit's ids and tags) have their categories escaped (`csv_cell` is one-to-one,
    so they stay distinct).

    Example:
        >>> import pandas as pd
        >>> f = pd.DataFrame({"tag": ["=cmd", "ok"], "n": [-1, 2]})
        >>> csv_safe_frame(f).to_dict("list")
        {'tag': ["'=cmd", 'ok'], 'n': [-1, 2]}
        >>> csv_safe_frame(f.astype({"tag": "category"}))["tag"].tolist()
        ["'=cmd", 'ok']
    """
    out = frame.copy(deep=False)  # columns are replaced, never changed in place
    for column in out.columns:
        if str(out[column].dtype) == "category":
            renamed = _escaped_categories(out[column].cat.categories)
            if renamed:
                out[column] = out[column].cat.rename_categories(renamed)
        elif out[column].dtype == object or str(out[column].dtype) in ("string", "str"):
            out[column] = out[column].map(_csv_value).astype(out[column].dtype)
    out.columns = [csv_cell(str(c)) for c in out.columns]
    return out


def _csv_value(value: Any) -> Any:
    """`csv_cell` of a text cell, or of the text pandas writes for a container (a list of tags
    is written as its `str`, so the tags inside must be escaped too); other values unchanged.

    Example:
        >>> _csv_value(["Go;=1"]), _csv_value(-1), _csv_value("=1")
        ("['Go;'=1']", -1, "'=1")
    """
    if isinstance(value, list | tuple | dict | set):
        return csv_cell(str(value))
    return csv_cell(value)


def _escaped_categories(categories: Any) -> dict[Any, Any]:
    """{category: its `csv_cell`} for the categories that change (usually none).

    Text categories are tested with vectorised string slices (a million ids make no Python
    strings); others one by one.

    Example:
        >>> import pandas as pd
        >>> _escaped_categories(pd.Index(["=1", "ok", "'+x", "'a"]))
        {'=1': "'=1", "'+x": "''+x"}
        >>> _escaped_categories(pd.Index([1, 2]))
        {}
    """
    try:
        # arrow-backed text: the regex runs in C (object text would run it in Python)
        text = categories.astype("str") if categories.dtype == object else categories
        first = text.str.slice(0, 1)
        maybe = first.isin(tuple(_FIRST)) | text.str.contains(_ANY_SEPARATOR.pattern)
    except AttributeError:  # not text
        return {c: csv_cell(c) for c in categories if csv_cell(c) is not c}
    mask = pd_mask(maybe)
    return {c: e for c in categories[mask] if (e := csv_cell(c)) != c}


def pd_mask(values: Any) -> Any:
    """A boolean numpy mask from a pandas boolean Index/array (missing values are False)."""
    to_numpy = getattr(values, "to_numpy", None)
    if to_numpy is None:
        return values
    try:
        return to_numpy(dtype=bool, na_value=False)
    except TypeError:  # an Index's to_numpy takes no na_value
        return to_numpy(dtype=bool)


def printable(text: Any) -> str:
    """`text` safe for a terminal: dangerous characters (`toolkit.chars`) shown as escapes.

    Example:
        >>> printable("red\\x1b[31m tag\\nnext\\u202e")
        'red\\\\x1b[31m tag\\\\nnext\\\\u202e'
    """
    return escaped(text)


def tag_problem(tag: Any) -> str | None:
    """Why `tag` cannot be written to Lever, or None when it can.

    Example:
        >>> tag_problem("Python") is None
        True
        >>> tag_problem("  "), tag_problem("a\\x00b")
        ('empty tag', "control character U+0000 in tag 'a\\\\x00b'")
        >>> tag_problem("x" * 300)
        'tag of 300 characters (the maximum is 255)'
        >>> tag_problem("Py\\u200bthon")
        "invisible or control character U+200B in tag 'Py\\\\u200bthon'"
    """
    if not isinstance(tag, str):
        return f"a tag must be text, not {type(tag).__name__}"
    if not tag.strip():
        return "empty tag"
    if len(tag) > MAX_TAG_LENGTH:
        return f"tag of {len(tag):,} characters (the maximum is {MAX_TAG_LENGTH})"
    if REPLACEMENT in tag:  # Lever's tag held undecodable text: this is not its real spelling
        return (
            f"tag {short_repr(tag)} holds U+FFFD, the stand-in for text from Lever that could "
            "not be decoded (toolkit.chars), so it cannot be written back"
        )
    bad = first_dangerous(tag)
    if bad is not None:
        return f"{_kind(bad)} character U+{ord(bad):04X} in tag {short_repr(tag)}"
    return None


def _kind(char: str) -> str:
    return "control" if ord(char) < 0xA0 else "invisible or control"


TAG_RULE = (
    f"a tag must be non-empty after stripping spaces, without {DANGEROUS_DESCRIPTION} (nor "
    f"U+FFFD), and at most {MAX_TAG_LENGTH} characters"
)


def first_tag_problem(tags: Iterable[Any]) -> str | None:
    """What is wrong with the first tag Lever should not get (`tag_problem`), or None.

    Example:
        >>> first_tag_problem(["Python", " ", "Go"])
        'empty tag'
        >>> first_tag_problem(["Python"]) is None
        True
    """
    return next((problem for tag in tags if (problem := tag_problem(tag))), None)


def check_tags(tags: Iterable[Any], what: str = "tag") -> None:
    """Raise one ConfigurationError line naming the first bad tag (see `tag_problem`)."""
    if problem := first_tag_problem(tags):
        raise ConfigurationError(f"bad {what}: {problem}; {TAG_RULE}")


def private_dir(path: str | os.PathLike) -> Path:
    """Create `path` and any missing parents as 0700 folders; return it.

    Folders that already exist are left as they are (`--out .` must not change the mode of the
    user's own folder); the ones this call creates are 0700 whatever the umask.
    """
    path = Path(path)
    missing = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            continue  # created meanwhile by someone else: not ours to change
        os.chmod(folder, 0o700)
    if not path.is_dir():
        raise NotADirectoryError(str(path))
    return path


def private_file(path: str | os.PathLike) -> Path:
    """Make an existing file 0600 (missing files are ignored); return its path."""
    path = Path(path)
    try:
        os.chmod(path, 0o600, follow_symlinks=False)
    except FileNotFoundError:
        pass
    except NotImplementedError:  # pragma: no cover  (platforms without lchmod)
        if not path.is_symlink():
            os.chmod(path, 0o600)
    return path


def private_tree(folder: str | os.PathLike) -> None:
    """Every folder under `folder` 0700 and every file 0600 (symlinks are left alone)."""
    root = Path(folder)
    if not root.is_dir():
        return
    os.chmod(root, 0o700)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            p = Path(dirpath, name)
            if not p.is_symlink():
                os.chmod(p, 0o700)
        for name in filenames:
            p = Path(dirpath, name)
            if not p.is_symlink():
                os.chmod(p, 0o600)


def create_private(path: str | os.PathLike) -> Path:
    """Create `path` empty with mode 0600 if it does not exist (never follows a symlink)."""
    path = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o600)
    os.close(fd)
    return private_file(path)


# No file of the toolkit nests deeper than a few levels; a `[[[[...` of thousands would exhaust
# the parser's recursion (a traceback) or anything that walks the value later.
MAX_YAML_DEPTH = 50


class _NoAliasLoader(yaml.SafeLoader):
    """A safe loader that refuses aliases (no anchor can be expanded, however small the text)
    and values nested deeper than `MAX_YAML_DEPTH`."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases (*name) are not allowed here", mark
            )
        if self._depth >= MAX_YAML_DEPTH:
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(
                None, None, f"YAML nested deeper than {MAX_YAML_DEPTH} levels", mark
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def safe_yaml_load(text: str, max_chars: int = 1_000_000) -> Any:
    """`yaml.safe_load` that refuses aliases and texts over `max_chars`.

    Raises:
        yaml.YAMLError: on an alias (`*name`), or on bad YAML; ValueError when too long.

    Example:
        >>> safe_yaml_load("[a, b]")
        ['a', 'b']
        >>> safe_yaml_load("a: &x [1]\\nb: *x")
        Traceback (most recent call last):
        ...
        yaml.composer.ComposerError: YAML aliases (*name) are not allowed here
        ...
    """
    if len(text) > max_chars:
        raise ValueError(f"YAML text of {len(text):,} characters (the maximum is {max_chars:,})")
    loader = _NoAliasLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


__all__ = [
    "CSV_ESCAPE",
    "FORMULA_STARTS",
    "MAX_TAG_LENGTH",
    "SEPARATORS",
    "TAG_RULE",
    "check_tags",
    "create_private",
    "csv_cell",
    "csv_safe_frame",
    "csv_uncell",
    "printable",
    "private_dir",
    "private_file",
    "private_tree",
    "safe_yaml_load",
    "short_repr",
    "tag_problem",
]
