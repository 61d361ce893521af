"""`lever-tags diff OLD NEW` (issue 23): after adding one tag, removing another and creating a new
one on a sandbox account, the diff lists exactly those three changes; an unchanged account gives
an empty diff."""

from __future__ import annotations

import json
from pathlib import Path

from toolkit.audit import tag_coverage, tag_statistics
from toolkit.cli import main
from toolkit.snapshot.store import load_snapshot
from toolkit.workflows.diff import diff_audits

NEW_TAG = "Zebra onboarding 2026"


def _three_changes(sb, frame) -> dict[str, tuple[str, str]]:
    """Add a tag to the one opportunity a split contact lacks it on, remove a widely used tag
    from one opportunity of a contact that had it everywhere, and put a brand-new tag on a
    one-opportunity contact. Returns the (contact, tag) of each."""
    coverage = tag_coverage(frame)
    common = tag_statistics(frame)
    common = set(common.loc[common["opportunities"] >= 20, "tag"])
    split = coverage[(coverage["opportunities"] - coverage["with_tag"] == 1)
                     & (coverage["with_tag"] >= 1) & coverage["tag"].isin(common)]  # fmt: skip
    full = coverage[(coverage["with_tag"] == coverage["opportunities"])
                    & (coverage["opportunities"] >= 2) & coverage["tag"].isin(common)]  # fmt: skip
    c1, t1 = split.iloc[0][["contact_id", "tag"]]
    full = full[(full["contact_id"] != c1) & (full["tag"] != t1)]
    c2, t2 = full.iloc[0][["contact_id", "tag"]]
    sizes = frame.groupby("contact_id").size()
    singles = frame[frame["contact_id"].isin(sizes[sizes == 1].index)]
    c3, o3 = singles.iloc[0][["contact_id", "opportunity_id"]]
    by_id = {o["id"]: o for o in sb.opportunities()}
    mine = frame[frame["contact_id"] == c1]
    target = next(
        o for o, tags in zip(mine["opportunity_id"], mine["tags"], strict=True) if t1 not in tags
    )
    sb.set_tags(target, [*by_id[target]["tags"], t1])
    victim = frame.loc[frame["contact_id"] == c2, "opportunity_id"].iloc[0]
    sb.set_tags(victim, [t for t in by_id[victim]["tags"] if t != t2])
    sb.set_tags(o3, [*by_id[o3]["tags"], NEW_TAG])
    return {"resolved": (c1, t1), "reappeared": (c2, t2), "new tag": (c3, NEW_TAG)}


def test_diff_of_two_snapshots_lists_exactly_the_three_changes(env, capsys):
    assert main(["snapshot", "--with-personal", "--out", "old.parquet"]) == 0
    old = load_snapshot("old.parquet").frame
    done = _three_changes(env, old)
    assert main(["snapshot", "--with-personal", "--out", "new.parquet"]) == 0
    capsys.readouterr()

    assert main(["diff", "old.parquet", "new.parquet", "--with-names", "--out", "d"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "0 new split pairs, 1 resolved, 1 reappeared; 1 new tag"
    diff, _ = diff_audits("old.parquet", "new.parquet", with_names=True)
    got = {
        (kind, change, contact, tag)
        for kind, change, tag, contact in diff.changes[
            ["kind", "change", "tag", "contact_id"]
        ].itertuples(index=False)
    }
    (c1, t1), (c2, t2) = done["resolved"], done["reappeared"]
    assert got == {
        ("split pair", "resolved", c1, t1),
        ("split pair", "reappeared", c2, t2),
        ("tag", "new", "", NEW_TAG),
    }
    names = dict(zip(old["contact_id"], old["name"], strict=True))
    assert set(diff.changes["name"]) == {names[c1], names[c2], ""}
    assert set(diff.per_tag["tag"]) == {t1, t2, NEW_TAG}
    summary = json.loads(Path("d/since_last_run.json").read_text())
    assert summary["split pairs resolved"] == 1 and summary["tags new"] == 1

    # names only when asked for
    plain, _ = diff_audits("old.parquet", "new.parquet")
    assert set(plain.changes["name"]) == {""}


def test_an_unchanged_account_gives_an_empty_diff(env, capsys):
    assert main(["snapshot", "--out", "a.parquet"]) == 0
    assert main(["snapshot", "--out", "b.parquet"]) == 0
    assert main(["audit", "--out", "audit-a"]) == 0
    assert main(["audit", "--out", "audit-b"]) == 0
    capsys.readouterr()
    for old, new in (("a.parquet", "b.parquet"), ("audit-a", "audit-b")):
        assert main(["diff", old, new]) == 0
        assert capsys.readouterr().out.splitlines()[0] == "nothing changed"
        assert diff_audits(old, new)[0].empty


def test_diff_of_two_audit_folders(env, capsys):
    assert main(["snapshot", "--out", "old.parquet"]) == 0
    assert main(["audit", "--out", "before"]) == 0
    done = _three_changes(env, load_snapshot("old.parquet").frame)
    assert main(["audit", "--out", "after"]) == 0
    diff, _ = diff_audits("before", "after")
    kinds = sorted(zip(diff.changes["kind"], diff.changes["change"], strict=True))
    # without the earlier snapshot a pair split again cannot be told from a new one
    assert kinds == [("split pair", "new"), ("split pair", "resolved"), ("tag", "new")]
    assert (done["reappeared"][1], "new") in set(
        zip(diff.changes["tag"], diff.changes["change"], strict=True)
    )
    capsys.readouterr()
    assert main(["diff", "before", "after"]) == 0
    assert "pairs split again count as new" in capsys.readouterr().out


def test_diff_of_something_else_is_bad_input(env, capsys):
    assert main(["diff", "nope.parquet", "nope2"]) == 2
    assert "no such snapshot or audit folder" in capsys.readouterr().err
