"""lever-tag-toolkit: audit and repair Lever tags split across a contact's opportunities.

The package root stays thin and imports nothing: importing ``toolkit.audit`` (pure pandas)
must not load the HTTP client, and the sandbox must load nothing of the toolkit's own side, so
the names below are imported on first use (PEP 562). See ``docs/architecture.md`` for the
packages and the walls between them (``tests/test_walls.py`` checks them).
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from toolkit.client import LeverClient
    from toolkit.errors import ConfigurationError, LeverError

__all__ = ["ConfigurationError", "LeverClient", "LeverError", "__version__"]
__version__ = "0.1.0"
_LAZY = {
    "ConfigurationError": "toolkit.errors",
    "LeverError": "toolkit.errors",
    "LeverClient": "toolkit.client",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    # `from toolkit import workflows` and alike: a submodule, imported by the import system.
    raise AttributeError(f"module 'toolkit' has no attribute {name!r}")
