"""`from eventdbx.plugin import Plugin, Reject, Retry`: the process-plugin SDK's public import path."""

from eventdbx.sdk.plugin import Event, Init, Plugin, Reject, Retry

__all__ = ["Event", "Init", "Plugin", "Reject", "Retry"]
