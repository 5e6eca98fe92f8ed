"""Human uptime text for `dbx status`/`stop`: `1d 2h 3m`, `4m 5s`, `under 1s`."""

from __future__ import annotations


def format_uptime(seconds: float) -> str:
    """Non-zero parts of d/h/m; seconds only when fewer than three parts precede."""
    if seconds < 1:
        return "under 1s"
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    if secs and len(parts) < 3:
        parts.append(f"{secs}s")
    return " ".join(parts)
