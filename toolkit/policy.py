"""The policy file: the user's decisions about tags (the audit only offers evidence).

A policy is a small YAML file::

    version: 1
    contact_level:          # tags that describe the person: propagate to all their opportunities
      - Python
      - tag: Do not contact # a family: any member counts as the tag, which is added everywhere;
        aliases: [DNC, Do Not Contact]
        normalize: true     # also remove the aliases (in the same plan, adds before removes)
      - pattern: "Skill: *" # every matching tag is contact-level, each on its own
    never_touch:            # tags the toolkit must never add or remove
      - Full-time
    include_archived: true  # consider archived opportunities (default true)
    skip_anonymized: true   # never write to anonymized opportunities (default true)
    on_removal: report      # sync: a contact-level tag removed from one opportunity is
                            # reported (default) or propagated (removed from the others)

Tags are exact strings (Lever's tag filter is case sensitive); in a pattern ``*`` is any run of
characters (`toolkit.audit.families`, which resolves families over a frame). Every mistake in
the file is a ``ConfigurationError`` whose message is one line naming the file, the key and the
fix.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from toolkit.audit.families import TagFamily, expand_patterns, pattern_regex
from toolkit.audit.variants import normalize_tag
from toolkit.errors import ConfigurationError
from toolkit.files import read_yaml, write_text_atomic
from toolkit.specs import POLICY, check, short

__all__ = [
    "ALLOWED_KEYS",
    "POLICY_VERSION",
    "Policy",
    "TagFamily",
    "load_policy",
    "policy_tag_warnings",
    "save_policy",
]

POLICY_VERSION = 1
ALLOWED_KEYS = tuple(POLICY["properties"])  # the spec in toolkit/specs.py


ON_REMOVAL = tuple(POLICY["properties"]["on_removal"]["enum"])  # what sync does on removal
_TAG_LISTS = ("contact_level", "never_touch")
_FLAGS = ("include_archived", "skip_anonymized")


@dataclass(frozen=True)
class Policy:
    """The user's tag decisions.

    Attributes:
        contact_level: exact tags that describe the person (propagated to all their opportunities).
        never_touch: exact tags the toolkit never adds or removes.
        include_archived: consider archived opportunities.
        skip_anonymized: never write to anonymized opportunities.
        on_removal: what `lever-tags sync` does when a contact-level tag disappears from one
            opportunity while still on others: ``report`` (default) or ``propagate``.
        families: the ``contact_level`` entries with aliases (their tag is in contact_level).
        patterns: the ``{pattern: ...}`` entries (expanded over an account's tags by
            ``resolve``).
        version: the file format version (1).
        source: where it came from (a path, or "<dict>"); not part of equality.

    Example:
        >>> p = Policy.from_dict({"version": 1, "contact_level": ["Python"]})
        >>> p.contact_level, p.include_archived, p.decision("Python"), p.decision("Go")
        (('Python',), True, 'contact_level', None)
    """

    contact_level: tuple[str, ...] = ()
    never_touch: tuple[str, ...] = ()
    include_archived: bool = True
    skip_anonymized: bool = True
    on_removal: str = "report"
    families: tuple[TagFamily, ...] = ()
    patterns: tuple[str, ...] = ()
    version: int = POLICY_VERSION
    source: str = field(default="<policy>", compare=False)

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>", *, schema: bool = True) -> Policy:
        """Validate a parsed policy mapping.

        Args:
            data: the mapping (as ``yaml.safe_load`` gives it).
            source: the file name used in error messages.
            schema: check `data` against the spec (`toolkit.specs.POLICY`); only a caller that
                built `data` itself in the spec's shape turns it off (the explorer's policy
                panel, live, before it saves: jsonschema takes a second to load).

        Returns:
            A ``Policy``.

        Raises:
            ConfigurationError: one line naming ``source``, the key and the fix.

        Example:
            >>> Policy.from_dict({"version": 1, "never_touch": ["Full-time"]}).never_touch
            ('Full-time',)
        """

        if schema:
            check(data, POLICY, source)  # the declarative spec: one line naming the key and fix
        contact_level, families, patterns = _entries(data.get("contact_level") or (), source)
        lists = {
            "contact_level": contact_level,
            "never_touch": tuple(dict.fromkeys(data.get("never_touch") or ())),
        }
        flags = {key: data.get(key, True) for key in _FLAGS}

        on_removal = data.get("on_removal", "report")
        members = [*lists["contact_level"], *(a for f in families for a in f.aliases)]
        both = [t for t in members if t in set(lists["never_touch"])]
        if both:
            raise ConfigurationError(
                f"{source}: tag(s) {', '.join(short(t) for t in both)} are in both "
                "'contact_level' and 'never_touch'; keep each tag in one of the two lists"
            )
        return cls(
            contact_level=lists["contact_level"],
            never_touch=lists["never_touch"],
            include_archived=flags["include_archived"],
            skip_anonymized=flags["skip_anonymized"],
            on_removal=on_removal,
            families=families,
            patterns=patterns,
            version=POLICY_VERSION,
            source=source,
        )

    def to_dict(self) -> dict[str, Any]:
        """The policy as a plain mapping (what ``from_dict`` reads).

        Example:
            >>> Policy(contact_level=("Python",)).to_dict()["contact_level"]
            ['Python']
        """
        declared = {f.tag: f for f in self.families}
        entries: list[Any] = [
            _entry(declared[t]) if t in declared else t for t in self.contact_level
        ]
        return {
            "version": self.version,
            "contact_level": entries + [{"pattern": p} for p in self.patterns],
            "never_touch": list(self.never_touch),
            "include_archived": self.include_archived,
            "skip_anonymized": self.skip_anonymized,
        } | ({"on_removal": self.on_removal} if self.on_removal != "report" else {})

    def to_yaml(self) -> str:
        """The policy as YAML text with a short explanatory header.

        Example:
            >>> text = Policy(contact_level=("Python",)).to_yaml()
            >>> Policy.from_dict(yaml.safe_load(text)) == Policy(contact_level=("Python",))
            True
        """
        header = (
            "# lever-tag-toolkit policy. Tags are exact strings (case sensitive).\n"
            "# contact_level: tags that describe the person; propagated to all their "
            "opportunities.\n"
            "# never_touch: tags the toolkit never adds or removes.\n"
            "# include_archived: consider archived opportunities. skip_anonymized: never write "
            "to anonymized ones.\n"
        )
        body = yaml.safe_dump(
            self.to_dict(), sort_keys=False, allow_unicode=True, default_flow_style=False
        )
        return header + body

    def decision(self, tag: str) -> str | None:
        """``"contact_level"`` (a tag, an alias or a pattern's match), ``"never_touch"`` or None.

        Example:
            >>> p = Policy.from_dict({"version": 1, "never_touch": ["Skill: old"],
            ...     "contact_level": [{"tag": "A", "aliases": ["a"]}, {"pattern": "Skill: *"}]})
            >>> [p.decision(t) for t in ["a", "Skill: Go", "Skill: old", "B"]]
            ['contact_level', 'contact_level', 'never_touch', None]
        """
        if tag in self.never_touch:
            return "never_touch"
        if tag in self.contact_level or any(tag in f.aliases for f in self.families):
            return "contact_level"
        if any(pattern_regex(p).fullmatch(tag) for p in self.patterns):
            return "contact_level"
        return None

    def __contains__(self, tag: object) -> bool:
        """A tag that counts for the contact-level tags (sync's poller watches these)."""
        return isinstance(tag, str) and self.decision(tag) == "contact_level"

    def family(self, tag: str) -> TagFamily:
        """The family whose canonical spelling is `tag` (a plain tag: a family of one).

        Example:
            >>> Policy.from_dict({"version": 1, "contact_level": [
            ...     {"tag": "A", "aliases": ["a"]}]}).family("A").aliases
            ('a',)
        """
        return next((f for f in self.families if f.tag == tag), TagFamily(tag))

    def resolve(self, known_tags: Iterable[str] = ()) -> tuple[TagFamily, ...]:
        """The contact-level families over an account's tags: the declared tags (with their
        aliases), then every known tag a pattern matches (never_touch tags and members of a
        declared family excepted), each a family of its own.

        Example:
            >>> p = Policy.from_dict({"version": 1, "contact_level": [
            ...     "Go", {"pattern": "Skill: *"}]})
            >>> [f.tag for f in p.resolve(["Skill: Go", "Go", "Python"])]
            ['Go', 'Skill: Go']
        """
        declared = tuple(self.family(t) for t in self.contact_level)
        taken = {m for f in declared for m in f.members} | set(self.never_touch)
        matched = expand_patterns(self.patterns, known_tags, exclude=taken)
        return declared + tuple(TagFamily(t) for t in matched)

    @property
    def tags(self) -> tuple[str, ...]:
        """Every tag the policy names (contact_level first)."""
        return self.contact_level + self.never_touch


def _entry(family: TagFamily) -> dict[str, Any]:
    out: dict[str, Any] = {"tag": family.tag, "aliases": list(family.aliases)}
    return out | ({"normalize": True} if family.normalize else {})


def _entries(
    items: Iterable[Any], source: str
) -> tuple[tuple[str, ...], tuple[TagFamily, ...], tuple[str, ...]]:
    """The contact_level entries (checked by the spec) as tags, families and patterns."""
    tags: dict[str, None] = {}
    families: list[TagFamily] = []
    patterns: dict[str, None] = {}
    owner: dict[str, str] = {}  # member -> the canonical tag it stands for
    for item in items:
        if isinstance(item, str):
            tags.setdefault(item, None)
            continue
        if "pattern" in item:
            patterns.setdefault(item["pattern"], None)
            continue
        aliases = tuple(dict.fromkeys(item.get("aliases") or ()))
        family = TagFamily(item["tag"], aliases, bool(item.get("normalize", False)))
        if any(f.tag == family.tag for f in families):
            raise ConfigurationError(
                f"{source}: the family of {short(family.tag)} is given twice in 'contact_level'; "
                "merge its aliases into one entry"
            )
        families.append(family)
        tags.setdefault(family.tag, None)
    for family in families:
        for alias in family.aliases:
            if alias == family.tag or alias in tags or alias in owner:
                other = family.tag if alias == family.tag or alias in tags else owner[alias]
                raise ConfigurationError(
                    f"{source}: {short(alias)} is an alias of {short(family.tag)} and also "
                    f"{'its own tag' if other == family.tag else 'stands for ' + short(other)}"
                    " in 'contact_level'; keep each spelling in one place"
                )
            owner[alias] = family.tag
    return tuple(tags), tuple(families), tuple(patterns)


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Read and validate a policy file.

    Args:
        path: the YAML file.

    Returns:
        A ``Policy`` whose ``source`` is the path.

    Raises:
        ConfigurationError: one line naming the file, the key and the fix (missing file, YAML
            syntax error with its line, wrong shape, unknown keys, wrong types, empty tags, a tag
            in both lists).

    Example:
        >>> import tempfile, os
        >>> with tempfile.TemporaryDirectory() as d:
        ...     path = os.path.join(d, "policy.yaml")
        ...     _ = open(path, "w").write("version: 1\\ncontact_level: [Python]\\n")
        ...     load_policy(path).contact_level
        ('Python',)
    """
    source = str(path)
    file = Path(path)
    if not file.is_file():
        what = "is a directory, not a file" if file.is_dir() else "does not exist"
        raise ConfigurationError(
            f"policy file {source} {what}; check the path (an example: toolkit.policy.save_policy)"
        )
    data = read_yaml(file, "policy file")  # no aliases: see toolkit.files.read_yaml
    if data is None:
        raise ConfigurationError(
            f"{source}: the policy file is empty; write at least 'version: 1' and "
            "'contact_level: [...]'"
        )
    return Policy.from_dict(data, source=source)


def save_policy(policy: Policy, path: str | Path) -> Path:
    """Write a policy as YAML (creating the parent folder).

    Args:
        policy: the policy.
        path: the file to write.

    Returns:
        The path written.
    """
    file = Path(path)
    return write_text_atomic(file, policy.to_yaml())  # 0600 in a 0700 folder when made


def policy_tag_warnings(policy: Policy, known_tags: Iterable[str]) -> list[str]:
    """One warning per policy tag that the account does not use, with close matches.

    Close matches are the account's tags that differ only by case, Unicode form or spaces, then
    ``difflib.get_close_matches``.

    Args:
        policy: the policy.
        known_tags: the account's tags (exact strings).

    Returns:
        Warning lines, in the policy's order.

    Example:
        >>> p = Policy(contact_level=("python", "Boomerang"))
        >>> policy_tag_warnings(p, ["Python", "Go", "Boomerang"])  # doctest: +ELLIPSIS
        ["policy tag 'python' (contact_level) is not used in this account; close matches: 'Python'"]
    """
    known = list(dict.fromkeys(str(t) for t in known_tags))
    return [
        f"policy tag {line}"
        for key in _TAG_LISTS
        for line in _unknown(getattr(policy, key), known, f" ({key})")
    ]


def unknown_tag_warnings(tags: Iterable[str], known_tags: Iterable[str]) -> list[str]:
    """One warning per tag (a `--tag` on the command line) the account does not use.

    Example:
        >>> unknown_tag_warnings(["Pythn", "Go"], ["Python", "Go"])
        ["tag 'Pythn' is not used in this account; close matches: 'Python'"]
    """
    known = list(dict.fromkeys(str(t) for t in known_tags))
    return [f"tag {line}" for line in _unknown(tags, known, "")]


def _unknown(tags: Iterable[str], known: list[str], where: str) -> list[str]:
    known_set = set(known)
    by_key: dict[str, list[str]] = {}
    for tag in known:
        by_key.setdefault(normalize_tag(tag), []).append(tag)
    lines: list[str] = []
    for tag in tags:
        if tag in known_set:
            continue
        matches = sorted(by_key.get(normalize_tag(tag), []))
        for close in difflib.get_close_matches(tag, known, n=3, cutoff=0.75):
            if close not in matches:
                matches.append(close)
        hint = (
            "close matches: " + ", ".join(short(m) for m in matches[:5])
            if matches
            else "no close match"
        )
        lines.append(f"{short(tag)}{where} is not used in this account; {hint}")
    return lines
