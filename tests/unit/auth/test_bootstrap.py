"""cli.token bootstrap (auth.md §7): reuse while valid, reissue otherwise."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from eventdbx.auth.bootstrap import ensure_cli_token
from eventdbx.auth.keys import generate_keys, signing_keys
from eventdbx.auth.records import TokenRecord
from eventdbx.config import AuthSettings

NOW = 1761480000.0


class Ledger:
    def __init__(self) -> None:
        self.records: dict[str, TokenRecord] = {}

    def get_token(self, jti: str) -> TokenRecord | None:
        return self.records.get(jti)

    def change_counter(self) -> int:
        return len(self.records)

    def add(self, record: TokenRecord) -> None:
        self.records[record.jti] = record


def _auth() -> AuthSettings:
    m = generate_keys(NOW)
    return AuthSettings(private_key=m.private_key, public_key=m.public_key, key_id=m.key_id)


def test_issue_reuse_and_reissue(tmp_path: Path) -> None:
    auth, ledger, path = _auth(), Ledger(), tmp_path / "cli.token"
    keys = signing_keys(auth)
    first = ensure_cli_token(path, keys=keys, auth=auth, ledger=ledger, record=ledger.add, now=NOW)
    assert path.read_text() == first + "\n" and stat.S_IMODE(path.stat().st_mode) == 0o600
    rec = next(iter(ledger.records.values()))
    assert (rec.subject, rec.group, rec.user, rec.issued_by, rec.root) == ("cli:bootstrap", "cli", "root",
                                                                          "cli-bootstrap", True)
    assert rec.expires_at is None and rec.actions == ("*.*",) and rec.resources == ("*",)
    again = ensure_cli_token(path, keys=keys, auth=auth, ledger=ledger, record=ledger.add, now=NOW + 10**7)
    assert again == first and len(ledger.records) == 1
    ledger.add(rec.revoked())
    third = ensure_cli_token(path, keys=keys, auth=auth, ledger=ledger, record=ledger.add, now=NOW)
    assert third != first and len(ledger.records) == 2
    other = _auth()  # a new key pair invalidates the file's token
    fourth = ensure_cli_token(path, keys=signing_keys(other), auth=other, ledger=ledger, record=ledger.add, now=NOW)
    assert fourth != third
    assert json.loads(json.dumps(ledger.records[rec.jti].to_dict()))["status"] == "revoked"
