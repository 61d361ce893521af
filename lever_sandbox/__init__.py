"""A Lever-compatible sandbox server with deterministic synthetic data.

Example:
    >>> from lever_sandbox import Sandbox
    >>> with Sandbox(seed=7, contacts=300, rate=1000, burst=1000) as sb:  # doctest: +SKIP
    ...     print(sb.base_url)
"""

from lever_sandbox.data import (
    CONTACT_LEVEL_TAGS,
    POSTING_TAGS,
    TAG_VARIANTS,
    Dataset,
    generate_dataset,
    is_archived,
)
from lever_sandbox.engine import INVALID_OFFSET_MESSAGE, SandboxConfig
from lever_sandbox.server import Sandbox

__all__ = [
    "CONTACT_LEVEL_TAGS",
    "INVALID_OFFSET_MESSAGE",
    "POSTING_TAGS",
    "TAG_VARIANTS",
    "Dataset",
    "Sandbox",
    "SandboxConfig",
    "generate_dataset",
    "is_archived",
]
