"""The bootstrap root token in `<data_dir>/cli.token` (auth.md §7): reuse while valid, else reissue.

Storage stays with the caller: it passes the ledger to check against and a function that records a new token.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from eventdbx.auth.records import TokenRecord, TokenRequest
from eventdbx.auth.tokens import TokenLedger, issue_token, verify_token
from eventdbx.errors import EventDBXError

if TYPE_CHECKING:
    from eventdbx.auth.keys import SigningKeys
    from eventdbx.config import AuthSettings

BOOTSTRAP_REQUEST = TokenRequest(
    group="cli", user="root", subject="cli:bootstrap", root=True, ttl_secs=0, issued_by="cli-bootstrap",
)


def is_reusable(token: str, *, keys: SigningKeys, auth: AuthSettings, ledger: TokenLedger, now: float) -> bool:
    """True when `token` passes §5 checks 1–6 and grants `*.*` on `*`."""
    try:
        verified = verify_token(token, keys=keys, auth=auth, ledger=ledger, now=now, action=None,
                                resource=None, write=False)
    except EventDBXError:
        return False
    return verified.actions == ("*.*",) and verified.resources == ("*",)


def ensure_cli_token(
    path: Path, *, keys: SigningKeys, auth: AuthSettings, ledger: TokenLedger,
    record: Callable[[TokenRecord], None], now: float,
) -> str:
    """The token in `path` if still reusable; else issue one, `record` it in the ledger and write it (0600)."""
    try:
        current = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        current = ""
    if current and is_reusable(current, keys=keys, auth=auth, ledger=ledger, now=now):
        return current
    fresh = issue_token(keys, auth, BOOTSTRAP_REQUEST, now)
    record(fresh)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(fresh.token + "\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return fresh.token
