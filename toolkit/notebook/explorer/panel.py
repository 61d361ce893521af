"""The explorer's policy panel: each tag with its evidence and a choice, the preview following.

Each tag of the account gets a row (a page at a time, with a filter): its numbers and a choice,
``contact-level``, ``alias of <tag>``, ``leave alone`` or ``never touch``, pre-filled from a given
policy or else from the draft (`toolkit.policy_draft`: the evidence's contact-level tags). Every
change rebuilds the policy (`policy_from_choices`, validated by `toolkit.policy`) and hands it to
the explorer, whose plan preview follows at once. "Save policy" writes the validated file
(atomic, 0600); "Save plan" writes the plan the preview shows (`TagExplorer.plan`); the next
command is shown under the buttons.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pandas as pd

from toolkit.errors import ConfigurationError
from toolkit.files import write_text_atomic
from toolkit.policy import Policy
from toolkit.remediate.planfile import save_plan
from toolkit.sanitize import tag_problem

CONTACT, LEAVE, NEVER = "contact-level", "leave alone", "never touch"
ALIAS = "alias of "
PAGE_SIZE = 12  # rows shown at once (the filter box finds any tag)


def initial_choices(evidence: pd.DataFrame, policy: Policy | None = None) -> dict[str, str]:
    """The starting choice per tag: the policy's decisions, else the draft's.

    Example:
        >>> ev = pd.DataFrame({"tag": ["Python", "py", "Berlin"], "suggestion": [
        ...     "likely contact-level", "unclear", "likely opportunity-level"]})
        >>> initial_choices(ev)
        {'Python': 'contact-level', 'py': 'leave alone', 'Berlin': 'leave alone'}
        >>> p = Policy.from_dict({"version": 1, "never_touch": ["Berlin"],
        ...     "contact_level": [{"tag": "Python", "aliases": ["py"]}]})
        >>> initial_choices(ev, p)
        {'Python': 'contact-level', 'py': 'alias of Python', 'Berlin': 'never touch'}
    """
    out: dict[str, str] = {}
    for tag, suggestion in zip(evidence["tag"], evidence["suggestion"], strict=True):
        tag = str(tag)
        if policy is None:
            likely = suggestion == "likely contact-level" and tag_problem(tag) is None
            out[tag] = CONTACT if likely else LEAVE
            continue
        owner = next((f.tag for f in policy.families if tag in f.aliases), None)
        decision = policy.decision(tag)
        out[tag] = (
            ALIAS + owner
            if owner
            else NEVER
            if decision == "never_touch"
            else CONTACT
            if decision == "contact_level"
            else LEAVE
        )
    return out


def policy_from_choices(
    choices: Mapping[str, str],
    base: Policy | None = None,
    source: str = "<panel>",
    *,
    validate: bool = True,
) -> Policy:
    """The policy the choices say (validated): contact-level tags with their aliases, never
    touch; what the base policy says about tags not in `choices` (and its patterns, normalize
    flags and other settings) is kept. ``validate=False`` skips the spec check (the live
    preview: the data is built here in the spec's shape; the file saved is always checked).

    Raises:
        ConfigurationError: one line: an alias of a tag that is not contact-level, or any
            mistake `Policy.from_dict` finds.

    Example:
        >>> policy_from_choices({"Python": CONTACT, "py": ALIAS + "Python", "x": NEVER}).to_dict()
        {'version': 1, 'contact_level': [{'tag': 'Python', 'aliases': ['py']}], 'never_touch': ['x'], 'include_archived': True, 'skip_anonymized': True}
    """  # noqa: E501
    base = base or Policy()
    shown = set(choices)
    contact = [t for t in base.contact_level if t not in shown]
    contact += [t for t, c in choices.items() if c == CONTACT]
    never = [t for t in base.never_touch if t not in shown]
    never += [t for t, c in choices.items() if c == NEVER]
    aliases: dict[str, list[str]] = {
        f.tag: [a for a in f.aliases if a not in shown] for f in base.families
    }
    for tag, choice in choices.items():
        if choice.startswith(ALIAS):
            canonical = choice[len(ALIAS) :]
            if canonical not in contact:
                raise ConfigurationError(
                    f"{tag!r} is an alias of {canonical!r}, which is not contact-level; "
                    f"make {canonical!r} contact-level or choose another"
                )
            aliases.setdefault(canonical, []).append(tag)
    normalize = {f.tag: f.normalize for f in base.families}
    entries: list[Any] = [
        {"tag": t, "aliases": aliases[t]} | ({"normalize": True} if normalize.get(t) else {})
        if aliases.get(t)
        else t
        for t in dict.fromkeys(contact)
    ]
    data = base.to_dict() | {
        "contact_level": entries + [{"pattern": p} for p in base.patterns],
        "never_touch": list(dict.fromkeys(never)),
    }
    return Policy.from_dict(data, source=source, schema=validate)


class PolicyPanel:
    """The policy panel of a `TagExplorer` (see the module docstring).

    Every tag of the account has a choice; a page of `page_size` rows is shown at a time (the
    evidence's order: the most carried tags first), and the filter box finds any tag. The rows'
    widgets are made once and reused page after page, so the panel starts and answers in the
    same time on an account with thousands of tags.

    Args:
        explorer: the explorer whose preview follows the choices.
        policy: a policy to pre-fill from (else the draft, from the evidence).
        policy_path, plan_path: where "Save policy" and "Save plan" write (relative ones in
            ``output_dir``).
        output_dir: the folder for relative paths (`toolkit.notebook.params.resolve_output_dir`
            gives the notebook's).
        snapshot_path: the snapshot the explorer shows, for the next command (else none).
        page_size: rows shown at once.
    """

    def __init__(
        self,
        explorer: Any,
        *,
        policy: Policy | None = None,
        policy_path: str | os.PathLike = "policy.yaml",
        plan_path: str | os.PathLike = "plan.csv",
        snapshot_path: str | os.PathLike | None = None,
        page_size: int = PAGE_SIZE,
        output_dir: str | os.PathLike = "",
    ) -> None:
        self.explorer = explorer
        self.base = policy
        folder = Path(output_dir) if output_dir else Path()
        self.policy_path, self.plan_path = folder / policy_path, folder / plan_path
        self.snapshot_path = str(snapshot_path or "")
        self.evidence = explorer.evidence  # computed once for the explorer and the panel
        self.rows = self.evidence.set_index("tag", drop=False)
        self.choices = initial_choices(self.evidence, policy)
        self.page, self.page_size = 0, page_size
        self._rendering = False
        self.filter = widgets.Text(placeholder=f"filter {len(self.choices):,} tags…")
        self.filter.add_class("ltt-policy-filter")
        self.filter.observe(lambda _c: self._turn(-self.page), names="value")
        self.dropdowns: list[widgets.Dropdown] = []
        self.labels: list[widgets.HTML] = []
        self.lines: list[widgets.HBox] = []
        for i in range(page_size):
            drop = widgets.Dropdown(options=[CONTACT, LEAVE, NEVER], value=LEAVE)
            drop.layout.width = "230px"
            drop.add_class("ltt-choice")
            drop.observe(lambda change, i=i: self._chosen(i, change["new"]), names="value")
            label = widgets.HTML()
            line = widgets.HBox([drop, label])
            line.add_class("ltt-policy-row")
            self.dropdowns.append(drop)
            self.labels.append(label)
            self.lines.append(line)
        self.shown: list[str] = []
        self.prev_page = widgets.Button(description="◀", layout={"width": "50px"})
        self.next_page = widgets.Button(description="▶", layout={"width": "50px"})
        self.prev_page.on_click(lambda _b: self._turn(-1))
        self.next_page.on_click(lambda _b: self._turn(+1))
        self.page_note = widgets.HTML()
        self.save_policy_button = widgets.Button(description="Save policy")
        self.save_policy_button.add_class("ltt-save-policy")
        self.save_policy_button.on_click(lambda _b: self.save_policy())
        self.save_plan_button = widgets.Button(description="Save plan")
        self.save_plan_button.add_class("ltt-save-plan")
        self.save_plan_button.on_click(lambda _b: self.save_plan())
        self.message = widgets.HTML()
        self.message.add_class("ltt-policy-message")
        self.next_command = widgets.HTML()
        self.next_command.add_class("ltt-next-command")
        self.box = widgets.VBox(
            [
                widgets.HTML("<b>Policy</b>: a choice per tag; the plan preview follows"),
                widgets.HBox([self.filter, self.prev_page, self.next_page, self.page_note]),
                widgets.VBox(self.lines),
                widgets.HBox([self.save_policy_button, self.save_plan_button]),
                self.message,
                self.next_command,
            ]
        )
        self.box.add_class("ltt-policy")
        self.policy: Policy | None = None
        self._render_page()
        self.apply(choose_tags=not getattr(explorer, "tags_given", False))

    def _matching(self) -> list[str]:
        needle = self.filter.value.strip().casefold()
        tags = list(self.choices)
        return [t for t in tags if needle in t.casefold()] if needle else tags

    def _turn(self, step: int) -> None:
        pages = max(1, -(-len(self._matching()) // self.page_size))
        self.page = min(max(0, self.page + step), pages - 1)
        self._render_page()

    def _render_page(self) -> None:
        """Point the reused rows at the tags of the current page."""
        matching = self._matching()
        start = self.page * self.page_size
        self.shown = matching[start : start + self.page_size]
        canonical = [t for t, c in self.choices.items() if c == CONTACT]
        self._rendering = True
        try:
            for i, line in enumerate(self.lines):
                if i >= len(self.shown):
                    line.layout.display = "none"
                    continue
                tag = self.shown[i]
                line.layout.display = None
                options = [CONTACT, LEAVE, NEVER, *(ALIAS + c for c in canonical if c != tag)]
                if self.choices[tag] not in options:
                    options.append(self.choices[tag])
                self.dropdowns[i].options = options
                self.dropdowns[i].value = self.choices[tag]
                self.labels[i].value = self._label(self.rows.loc[tag])
        finally:
            self._rendering = False
        pages = max(1, -(-len(matching) // self.page_size))
        self.prev_page.disabled = self.page <= 0
        self.next_page.disabled = self.page >= pages - 1
        self.page_note.value = f"page {self.page + 1} of {pages} ({len(matching):,} tags)"

    def _chosen(self, i: int, choice: str) -> None:
        if self._rendering or i >= len(self.shown):
            return
        self.choose(self.shown[i], choice)

    @staticmethod
    def _label(row: Any) -> str:
        tag = html.escape(str(row.tag))
        numbers = (
            f"{int(row.opportunities)} opps, {int(row.contacts_with_tag)} contacts, "
            f"{row.full_coverage_rate:.0%} full, clustering {row.clustering:.2f}"
        )
        return (
            f'<span class="tex2jax_ignore mathjax_ignore"><b>{tag}</b> '
            f"<small>{numbers}; {html.escape(str(row.suggestion))}</small></span>"
        )

    def choose(self, tag: str, choice: str) -> None:
        """Set one tag's choice (what its dropdown does) and let the preview follow."""
        if tag not in self.choices:
            raise KeyError(f"no tag {tag!r} in this account")
        was = self.choices[tag]
        self.choices[tag] = choice
        self.apply()
        if (was == CONTACT) != (choice == CONTACT):
            self._render_page()  # the "alias of" options follow the contact-level tags

    def apply(self, choose_tags: bool = True) -> Policy | None:
        """Rebuild the policy from the choices and hand it to the explorer (None: invalid); its
        contact-level tags become the explorer's choice (not at the start when the explorer was
        given tags: those stay until a choice changes)."""
        try:
            source = str(self.policy_path)
            policy = policy_from_choices(self.choices, self.base, source, validate=False)
        except ConfigurationError as exc:
            self.message.value = f"<b>Not a valid policy:</b> {html.escape(str(exc))}"
            return None
        self.policy = policy
        self.message.value = ""
        ex = self.explorer
        ex.policy = policy
        ex._preview = None  # the same tags may now mean other families
        if choose_tags:
            known = [str(t) for t in ex.index.tags]
            ex.choose_tags([f.tag for f in policy.resolve(known)])
        else:
            ex.refresh()
        return policy

    def save_policy(self) -> Path | None:
        """Write the validated policy (atomic, 0600) and show the next command."""
        if self.policy is None:
            return None
        try:  # the file is checked against the spec whole (the live policy skips the schema)
            checked = policy_from_choices(self.choices, self.base, str(self.policy_path))
        except ConfigurationError as exc:
            self.message.value = f"<b>Not saved:</b> {html.escape(str(exc))}"
            return None
        path = write_text_atomic(self.policy_path, checked.to_yaml())
        snap = f" --snapshot {self.snapshot_path}" if self.snapshot_path else ""
        self.message.value = f"Saved the policy to <code>{html.escape(str(path))}</code>."
        self.next_command.value = (
            "Next: <code>lever-tags plan --policy "
            f"{html.escape(str(path))}{html.escape(snap)} --out plan.csv</code>"
        )
        return path

    def save_plan(self) -> Path | None:
        """Write the plan the preview shows and show the next command."""
        plan = self.explorer.plan()
        if plan is None:
            self.message.value = "No contact-level tag chosen: no plan to save."
            return None
        path = save_plan(plan, self.plan_path)
        self.message.value = (
            f"Saved the plan ({len(plan.rows)} changes) to <code>{html.escape(str(path))}</code>."
        )
        self.next_command.value = (
            f"Next: <code>lever-tags apply {html.escape(str(path))}</code> (a dry run; then "
            "<code>--yes</code>)"
        )
        return path

    def widget(self) -> widgets.VBox:
        return self.box

    def _ipython_display_(self) -> None:  # the panel as a cell's last line shows it
        from IPython.display import display  # the kernel's display; only when shown

        display(self.box)


def policy_panel(explorer: Any, **options: Any) -> PolicyPanel:
    """A `PolicyPanel` over `explorer` (the notebook's one call)."""
    return PolicyPanel(explorer, **options)
