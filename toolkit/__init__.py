"""lever-tag-toolkit: audit and repair Lever tags split across a contact's opportunities.

The package root stays thin: importing ``toolkit.audit.engine`` (pure pandas) must not load the HTTP
client, so `LeverClient` is imported on first use (PEP 562), not here. See
``docs/architecture.md`` for the packages and the walls between them.
"""

from typing import TYPE_CHECKING, Any

from toolkit.errors import ConfigurationError, LeverError

if TYPE_CHECKING:
    from toolkit.client import LeverClient

__all__ = ["ConfigurationError", "LeverClient", "LeverError", "__version__"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "LeverClient":
        # Imported here, not at the top: the client pulls in requests, which pure modules must not.
        from toolkit.client import LeverClient

        return LeverClient
    raise AttributeError(f"module 'toolkit' has no attribute {name!r}")
