"""A Lever-compatible sandbox server with deterministic synthetic data.

A package of its own beside `toolkit/` (as moto is beside boto3): it imports nothing of the
toolkit. Start it in this process with `Sandbox`, or as a process of its own with
`lever_sandbox.process.SandboxProcess` (which runs `python -m lever_sandbox`, see
`lever_sandbox.cli`). The names below are imported on first use (PEP 562), so that
`lever_sandbox.cli` and `lever_sandbox.config` load no tornado.

Example:
    >>> from lever_sandbox import Sandbox
    >>> with Sandbox(seed=7, contacts=300, rate=1000, burst=1000) as sb:  # doctest: +SKIP
    ...     print(sb.base_url)
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lever_sandbox.config import SandboxConfig
    from lever_sandbox.data import (
        CONTACT_LEVEL_TAGS,
        POSTING_TAGS,
        TAG_VARIANTS,
        Dataset,
        generate_dataset,
        is_archived,
    )
    from lever_sandbox.engine import INVALID_OFFSET_MESSAGE
    from lever_sandbox.process import SandboxProcess
    from lever_sandbox.server import Sandbox

__all__ = [
    "CONTACT_LEVEL_TAGS",
    "INVALID_OFFSET_MESSAGE",
    "POSTING_TAGS",
    "TAG_VARIANTS",
    "Dataset",
    "Sandbox",
    "SandboxConfig",
    "SandboxProcess",
    "generate_dataset",
    "is_archived",
]
_LAZY = {
    "CONTACT_LEVEL_TAGS": "lever_sandbox.data",
    "POSTING_TAGS": "lever_sandbox.data",
    "TAG_VARIANTS": "lever_sandbox.data",
    "Dataset": "lever_sandbox.data",
    "generate_dataset": "lever_sandbox.data",
    "is_archived": "lever_sandbox.data",
    "INVALID_OFFSET_MESSAGE": "lever_sandbox.engine",
    "SandboxConfig": "lever_sandbox.config",
    "Sandbox": "lever_sandbox.server",
    "SandboxProcess": "lever_sandbox.process",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lever_sandbox' has no attribute {name!r}")
