"""The audit: pure pandas functions from a snapshot frame to split pairs, missing assignments,
per-tag statistics, variants and evidence (see docs/architecture.md). Never loads the client.

`engine` is the vectorised core the tables share; `tables`, `variants`, `evidence` and `coverage`
are the public functions by subject; `result.run_audit` derives them all from one preparation;
`report` writes `summary.json` and the CSVs. The names below are the package's public API.
"""

from toolkit.audit.coverage import coverage_grid
from toolkit.audit.engine import (
    COVERAGE_COLUMNS,
    EVIDENCE_COLUMNS,
    MISSING_COLUMNS,
    SPLIT_COLUMNS,
    SUMMARY_KEYS,
    TAG_STATISTICS_COLUMNS,
    VARIANT_COLUMNS,
)
from toolkit.audit.evidence import contact_level_evidence, looks_posting_derived
from toolkit.audit.result import AuditResult, run_audit
from toolkit.audit.tables import (
    considered,
    explode_tags,
    missing_assignments,
    split_pairs,
    summarize,
    tag_coverage,
    tag_statistics,
)
from toolkit.audit.variants import normalize_tag, tag_variants

__all__ = [
    "COVERAGE_COLUMNS",
    "EVIDENCE_COLUMNS",
    "MISSING_COLUMNS",
    "SPLIT_COLUMNS",
    "SUMMARY_KEYS",
    "TAG_STATISTICS_COLUMNS",
    "VARIANT_COLUMNS",
    "AuditResult",
    "considered",
    "contact_level_evidence",
    "coverage_grid",
    "explode_tags",
    "looks_posting_derived",
    "missing_assignments",
    "normalize_tag",
    "run_audit",
    "split_pairs",
    "summarize",
    "tag_coverage",
    "tag_statistics",
    "tag_variants",
]
