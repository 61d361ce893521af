"""lever-tag-toolkit: audit and repair Lever tags split across a contact's opportunities."""

from toolkit.client import LeverClient
from toolkit.errors import ConfigurationError, LeverError

__all__ = ["ConfigurationError", "LeverClient", "LeverError", "__version__"]
__version__ = "0.1.0"
