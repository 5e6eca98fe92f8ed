"""RFC 3339 timestamp formatting and parsing (UTC, shortest exact fraction)."""

from __future__ import annotations

from datetime import UTC, datetime

from eventdbx.errors import InvalidSchemaError


def _fraction(micros: int) -> str:
    if micros == 0:
        return ""
    if micros % 1000 == 0:
        return f".{micros // 1000:03d}"
    return f".{micros:06d}"


def format_ts(moment: datetime, *, suffix: str = "Z") -> str:
    """`2025-10-26T12:00:00.123456Z` style (fraction none/3/6 digits); suffix `Z` or `+00:00`."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + _fraction(utc.microsecond) + suffix


def format_epoch(seconds: float, *, suffix: str = "Z") -> str:
    """Format Unix seconds as RFC 3339 UTC."""
    return format_ts(datetime.fromtimestamp(seconds, tz=UTC), suffix=suffix)


def format_epoch_millis(seconds: float, *, suffix: str = "Z") -> str:
    """Format Unix seconds as RFC 3339 UTC with exactly three fraction digits."""
    utc = datetime.fromtimestamp(seconds, tz=UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + f".{utc.microsecond // 1000:03d}" + suffix


def parse_ts(text: str) -> datetime:
    """Parse RFC 3339 (0-9 fraction digits, any offset) into an aware datetime."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    head, dot, rest = value.partition(".")
    if dot:
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        if not digits or len(digits) > 9:
            raise InvalidSchemaError(f"invalid timestamp '{text}'")
        value = f"{head}.{digits[:6].ljust(6, '0')}{rest}"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidSchemaError(f"invalid timestamp '{text}'") from exc
    if parsed.tzinfo is None or "T" not in value.upper():
        raise InvalidSchemaError(f"invalid timestamp '{text}'")
    return parsed


def to_epoch_micros(text: str) -> int:
    """Microseconds since the Unix epoch of an RFC 3339 timestamp."""
    moment = parse_ts(text)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
