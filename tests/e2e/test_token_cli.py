"""`dbx token` through the real CLI (cli.md §4)."""

from __future__ import annotations

import base64
import json
import re

import pytest
from tests.conftest import DbxEnv

JTI = re.compile(r"^  jti=(\S+)$", re.M)


def _claims(token: str) -> dict[str, object]:
    seg = token.split(".")[1]
    loaded: dict[str, object] = json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))
    return loaded


def test_help_summaries(dbx: DbxEnv) -> None:
    assert "Manage access tokens" in dbx.ok("token", "--help").out
    for cmd, summary in [
        ("generate", "Generate a new token"), ("list", "List configured tokens"),
        ("revoke", "Revoke an active token"), ("refresh", "Refresh an existing token (revokes the prior token)"),
    ]:
        assert summary in dbx.ok("token", cmd, "--help").out


def test_empty_list(dbx: DbxEnv) -> None:
    assert "no issued tokens" in dbx.ok("token", "list").out
    assert json.loads(dbx.ok("token", "list", "--json").out) == []
    assert (dbx.data_dir / "event_store.db").exists()


def test_non_root_needs_action(dbx: DbxEnv) -> None:
    err = dbx.fail("token", "generate", "--group", "g", "--user", "u").err
    assert "Error: at least one --action must be provided for non-root tokens" in err


def test_generate_text_record(dbx: DbxEnv) -> None:
    out = dbx.ok("token", "generate", "--group", "ops", "--user", "ann", "--action", "aggregate.append",
                 "--action", "aggregate.read", "--ttl", "120").out
    lines = out.splitlines()
    assert lines[0].startswith("token=ey")
    keys = [ln.split("=")[0] for ln in lines[1:]]
    assert keys == ["  jti", "  subject", "  group", "  user", "  root", "  status", "  issued_by", "  issued_at",
                    "  expires_at", "  actions", "  resources"]
    assert "  subject=ops:ann" in lines and "  root=false" in lines and "  status=Active" in lines
    assert "  issued_by=cli" in lines and "  actions=[aggregate.append,aggregate.read]" in lines
    assert "  resources=[*]" in lines
    claims = _claims(lines[0][len("token="):])
    assert claims["exp"] == claims["iat"] + 120  # type: ignore[operator]


def test_generate_root_json(dbx: DbxEnv) -> None:
    out = dbx.ok("token", "generate", "--group", "admin", "--user", "root", "--root", "--ttl", "0",
                 "--write-limit", "5", "--keep-alive", "--issued-by", "me", "--subject", "s", "--json").out
    rec = json.loads(out)
    assert list(rec) == ["token", "jti", "subject", "group", "user", "root", "actions", "resources", "issued_at",
                         "not_before", "expires_at", "issued_by", "status", "limits"]
    assert rec["group"] == "admin" and rec["user"] == "root" and rec["root"] is True
    assert '"root": true' in out
    assert rec["actions"] == ["*.*"] and rec["resources"] == ["*"] and rec["expires_at"] is None
    assert rec["subject"] == "s" and rec["issued_by"] == "me" and rec["status"] == "active"
    assert rec["limits"] == {"write_events": 5, "keep_alive": True}
    assert "exp" not in _claims(rec["token"])
    text = dbx.ok("token", "list").out
    assert "  expires_at=never" in text


def _generate(dbx: DbxEnv, *extra: str) -> dict[str, object]:
    out = dbx.ok("token", "generate", "--group", "g", "--user", "u", "--action", "aggregate.*", *extra,
                 "--json").out
    loaded: dict[str, object] = json.loads(out)
    return loaded


@pytest.mark.parametrize("by", ["jti", "token"])
def test_revoke(dbx: DbxEnv, by: str) -> None:
    rec = _generate(dbx)
    arg = str(rec[by])
    out = dbx.ok("token", "revoke", arg, "--reason", "lost", "--json").out
    res = json.loads(out)
    assert list(res) == ["reason", "revoked", "revoked_at", "token"]
    assert res["reason"] == "lost" and res["revoked"] is True and res["token"] == arg
    assert res["revoked_at"].endswith("+00:00")
    listed = json.loads(dbx.ok("token", "list", "--json").out)
    assert listed[0]["status"] == "revoked"
    assert "  status=Revoked" in dbx.ok("token", "list").out
    again = dbx.ok("token", "revoke", arg).out  # revoking again succeeds
    assert again.strip() == f"revoked {rec['jti']}"


def test_revoke_unknown(dbx: DbxEnv) -> None:
    assert "Error: token not found or inactive" in dbx.fail("token", "revoke", "nope").err
    assert "Error: token not found or inactive" in dbx.fail("token", "revoke", "a.b.c").err


def test_refresh(dbx: DbxEnv) -> None:
    err = dbx.fail("token", "refresh", code=2).err
    assert "the following required arguments were not provided" in err and "--token" in err
    old = _generate(dbx, "--ttl", "300", "--write-limit", "7")
    out = dbx.ok("token", "refresh", "--token", str(old["jti"])).out
    assert out.startswith("issued replacement token:\ntoken=")
    new_jti = JTI.search(out).group(1)  # type: ignore[union-attr]
    assert new_jti != old["jti"]
    listed = json.loads(dbx.ok("token", "list", "--json").out)
    assert [r["jti"] for r in listed] == [old["jti"], new_jti]
    assert [r["status"] for r in listed] == ["revoked", "active"]
    new = listed[1]
    for key in ("subject", "group", "user", "root", "actions", "resources", "issued_by", "limits"):
        assert new[key] == old[key]
    claims = _claims(new["token"])
    assert claims["exp"] == claims["iat"] + 300  # type: ignore[operator]
    assert len(re.findall("^token=", dbx.ok("token", "list").out, re.M)) == 2
    assert "Error: token not found or inactive" in dbx.fail("token", "refresh", "--token", str(old["jti"])).err
    assert "Error: token not found or inactive" in dbx.fail("token", "refresh", "--token", "missing").err
    ttl = json.loads(dbx.ok("token", "refresh", "--token", str(new["token"]), "--ttl", "0", "--json").out)
    assert ttl["expires_at"] is None and ttl["status"] == "active"


def test_list_hides_revoked_and_expired(dbx: DbxEnv) -> None:
    rec = _generate(dbx, "--ttl", "1")
    dbx.ok("token", "revoke", str(rec["jti"]))
    db = dbx.data_dir / "event_store.db"
    import sqlite3

    conn = sqlite3.connect(db)
    row = conn.execute("SELECT record FROM tokens").fetchone()
    data = json.loads(row[0])
    data["expires_at"] = "2000-01-01T00:00:00+00:00"
    with conn:
        conn.execute("UPDATE tokens SET record = ?", (json.dumps(data),))
    conn.close()
    assert "no issued tokens" in dbx.ok("token", "list").out


def test_token_values_encrypted_with_data_key(dbx: DbxEnv) -> None:
    import sqlite3

    dbx.ok("config", "--generate-dek")
    rec = _generate(dbx)
    conn = sqlite3.connect(dbx.data_dir / "event_store.db")
    stored = json.loads(conn.execute("SELECT record FROM tokens").fetchone()[0])
    conn.close()
    assert stored["token"].startswith("ENCv1:")
    assert json.loads(dbx.ok("token", "list", "--json").out)[0]["token"] == rec["token"]
    dbx.ok("token", "revoke", str(rec["token"]))
    key = "B" * 43 + "="
    err = dbx.fail("config", "--dek", key).err
    assert "Error: data encryption key cannot be changed once encrypted data exists" in err
