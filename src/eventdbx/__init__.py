"""EventDBX for Python: an event-sourced write-side database with a durable plugin pipeline."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from eventdbx.sdk.client import Client

__all__ = ["Client", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy so `dbx` start-up does not import the asyncio client and pycapnp.
    if name == "Client":
        from eventdbx.sdk.client import Client

        return Client
    raise AttributeError(name)
