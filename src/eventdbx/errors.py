"""The one error tree of EventDBX: every failure a user can meet, with its exit code and wire code.

```
EventDBXError                      exit 1, wire "internal"
├── InvalidTokenError              invalid_token        token not found or inactive
├── TokenExpiredError              token_expired        token has expired
├── TokenLimitReachedError         token_limit_reached  token write limit reached
├── UnauthorizedError              unauthorized         unauthorized
├── AggregateNotFoundError         aggregate_not_found  aggregate not found
├── AggregateArchivedError         aggregate_archived   aggregate is archived and cannot accept new events
├── SchemaExistsError              schema_exists        schema already exists
├── SchemaNotFoundError            schema_not_found     schema not found
├── InvalidSchemaError             invalid_schema       invalid schema: <detail>
│   └── InvalidColumnTypeError     invalid_schema       invalid column type 'X' (unprefixed, as cli.md §5)
├── SchemaViolationError           schema_violation     schema violation: <detail>
│   └── SchemaRequiredError        schema_violation     <detail> (CLI, unprefixed); wire_message adds the prefix
├── VersionConflictError           version_conflict     version conflict: <detail>
├── ConfigError                    config               configuration error: <detail>
├── StorageError                   storage              storage error: <detail>
├── IoError                        io                   io error: <detail>
├── SerializationError             serialization        serialization error: <detail>
├── JsonSyntaxError                invalid_schema       <reference parse message> at line L column C
├── CommandError                   (CLI only)           a plain one-line message
├── PluginError                    (CLI/daemon)         a plain one-line message about plugins or the queue
└── DeliveryError                  (sink seam)          a failed delivery: retryable or permanent
```

Each class's docstring is its default message; `prefix` is prepended to the detail.
"""

from __future__ import annotations

from typing import ClassVar


class EventDBXError(Exception):
    """internal error"""

    exit_code: ClassVar[int] = 1
    code: ClassVar[str] = "internal"
    prefix: ClassVar[str] = ""

    def __init__(self, detail: str | None = None) -> None:
        doc = (type(self).__doc__ or "").strip()
        self.detail = doc if detail is None else detail
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """The full one-line message, prefix included."""
        return f"{self.prefix}{self.detail}"

    @property
    def wire_message(self) -> str:
        """The message sent on the control socket (the same as `message` unless a class says otherwise)."""
        return self.message

    def __str__(self) -> str:
        return self.message


class InvalidTokenError(EventDBXError):
    """token not found or inactive"""

    code = "invalid_token"


class TokenExpiredError(EventDBXError):
    """token has expired"""

    code = "token_expired"


class TokenLimitReachedError(EventDBXError):
    """token write limit reached"""

    code = "token_limit_reached"


class UnauthorizedError(EventDBXError):
    """unauthorized"""

    code = "unauthorized"


class AggregateNotFoundError(EventDBXError):
    """aggregate not found"""

    code = "aggregate_not_found"


class AggregateArchivedError(EventDBXError):
    """aggregate is archived and cannot accept new events"""

    code = "aggregate_archived"


class SchemaExistsError(EventDBXError):
    """schema already exists"""

    code = "schema_exists"


class SchemaNotFoundError(EventDBXError):
    """schema not found"""

    code = "schema_not_found"


class InvalidSchemaError(EventDBXError):
    """invalid input"""

    code = "invalid_schema"
    prefix = "invalid schema: "


class InvalidColumnTypeError(InvalidSchemaError):
    """invalid column type"""

    prefix = ""


class SchemaViolationError(EventDBXError):
    """payload does not match the schema"""

    code = "schema_violation"
    prefix = "schema violation: "


class SchemaRequiredError(SchemaViolationError):
    """aggregate requires a schema before events can be appended when restrict=strict"""

    # The CLI prints the reference text bare (`Error: aggregate T requires a schema ...`, pinned);
    # the control socket sends `wire_message`, which carries the usual `schema violation: ` prefix.
    prefix = ""

    @property
    def wire_message(self) -> str:
        """The socket form: `schema violation: <detail>`."""
        return f"{SchemaViolationError.prefix}{self.detail}"


class VersionConflictError(EventDBXError):
    """the aggregate is at another version"""

    code = "version_conflict"
    prefix = "version conflict: "


class ConfigError(EventDBXError):
    """invalid configuration"""

    code = "config"
    prefix = "configuration error: "


class StorageError(EventDBXError):
    """the store failed"""

    code = "storage"
    prefix = "storage error: "


class WriteBusy(StorageError):
    """a non-waiting write found the write lock held elsewhere; nothing was written"""


class IoError(EventDBXError):
    """an I/O operation failed"""

    code = "io"
    prefix = "io error: "


class SerializationError(EventDBXError):
    """undecodable message"""

    code = "serialization"
    prefix = "serialization error: "


class JsonSyntaxError(EventDBXError):
    """invalid JSON"""

    code = "invalid_schema"


class CommandError(EventDBXError):
    """command failed"""


class PluginError(EventDBXError):
    """plugin operation failed"""


class DeliveryError(EventDBXError):
    """delivery failed"""

    def __init__(
        self, detail: str, *, retryable: bool = True, retry_after: float | None = None,
        endpoint_failure: bool = False, http_status: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.retryable = retryable
        self.retry_after = retry_after
        self.endpoint_failure = endpoint_failure
        self.http_status = http_status
