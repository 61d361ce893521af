"""A Lever-compatible sandbox server with deterministic synthetic data.

Example:
    >>> from toolkit.sandbox import Sandbox
    >>> with Sandbox(seed=7, contacts=300, rate=1000, burst=1000) as sb:  # doctest: +SKIP
    ...     print(sb.base_url)
"""

from toolkit.sandbox.data import (
    CONTACT_LEVEL_TAGS,
    POSTING_TAGS,
    TAG_VARIANTS,
    Dataset,
    generate_dataset,
    is_archived,
)
from toolkit.sandbox.engine import INVALID_OFFSET_MESSAGE, SandboxConfig
from toolkit.sandbox.server import Sandbox

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
