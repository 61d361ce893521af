"""The use cases: one function per job, called by the CLI (`toolkit/commands/`) and the notebooks.

Each job decides here, once, what both front ends used to decide apart: which opportunities are
considered (the parameter and the policy), which personal data a report holds, which warnings a
run gives, what `summary.json` says about a policy, where a plan's snapshot and journal go. The
commands parse arguments and print; the notebooks call one function per cell and display. See
docs/architecture.md.

Example:
    >>> run = audit_account("reports/audit", snapshot_path="snap.parquet")  # doctest: +SKIP
    >>> run.summary["split_pairs"], run.paths["summary"]  # doctest: +SKIP
"""

from toolkit.remediate.drift import check_drift
from toolkit.remediate.outcome import plan_tags, require_success, write_remediation_summary
from toolkit.workflows.audit import AuditRun, audit_account, audit_after, audit_for_plan
from toolkit.workflows.inputs import (
    PERSONAL_DATA,
    considered_archived,
    open_snapshot,
    optional_policy,
    personal_data,
    take_snapshot,
)
from toolkit.workflows.policy import DraftRun, draft_policy_file
from toolkit.workflows.remediate import (
    PlanRun,
    VerifyRun,
    apply_changes,
    client_for,
    drift_of,
    plan_changes,
    roll_back,
    verify_applied,
    verify_changes,
    verify_journal,
)
from toolkit.workflows.report import publish_executed_report, run_report
from toolkit.workflows.worklists import open_plan

# The jobs, and the remediation steps notebook 03 calls as they are (re-exported here so that
# both front ends find every step in this one module).
__all__ = [
    "PERSONAL_DATA",
    "AuditRun",
    "DraftRun",
    "PlanRun",
    "VerifyRun",
    "apply_changes",
    "audit_account",
    "audit_after",
    "audit_for_plan",
    "check_drift",
    "client_for",
    "considered_archived",
    "draft_policy_file",
    "drift_of",
    "open_plan",
    "open_snapshot",
    "optional_policy",
    "personal_data",
    "plan_changes",
    "plan_tags",
    "publish_executed_report",
    "require_success",
    "roll_back",
    "run_report",
    "take_snapshot",
    "verify_applied",
    "verify_changes",
    "verify_journal",
    "write_remediation_summary",
]
