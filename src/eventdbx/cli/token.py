"""`dbx token generate|list|revoke|refresh` over the ledger in event_store.db (cli.md §4, auth.md §4)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from eventdbx.cli.context import cli_context
from eventdbx.errors import CommandError, InvalidTokenError

if TYPE_CHECKING:
    from eventdbx.auth.records import TokenRecord
    from eventdbx.config import Settings
    from eventdbx.store.database import Database

NON_ROOT_NEEDS_ACTION = "at least one --action must be provided for non-root tokens"


@contextmanager
def _database(settings: Settings) -> Iterator[Database]:
    from eventdbx.store.database import Database

    db = Database.open(settings.paths.event_store, settings.durability, create=True)
    try:
        yield db
    finally:
        db.close()


def _now_ts() -> str:
    from eventdbx.domain.timefmt import format_epoch

    return format_epoch(time.time(), suffix="+00:00")


def _list_text(items: tuple[str, ...]) -> str:
    return "[" + (",".join(items) if items else "none") + "]"


def render_record(record: TokenRecord) -> str:
    """The text layout of one record (cli.md §4)."""
    lines = [
        f"token={record.token}", f"  jti={record.jti}", f"  subject={record.subject}", f"  group={record.group}",
        f"  user={record.user}", f"  root={'true' if record.root else 'false'}",
        f"  status={str(record.status).capitalize()}", f"  issued_by={record.issued_by}",
        f"  issued_at={record.issued_at}", f"  expires_at={record.expires_at or 'never'}",
        f"  actions={_list_text(record.actions)}", f"  resources={_list_text(record.resources)}",
    ]
    return "\n".join(lines)


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _emit(record: TokenRecord, as_json: bool, *, heading: str | None = None) -> None:
    if as_json:
        _print_json(record.to_dict())
        return
    if heading:
        click.echo(heading)
    click.echo(render_record(record))


@click.group(name="token", help="Manage access tokens")
def token() -> None:
    """Manage access tokens"""


@token.command(name="generate", help="Generate a new token")
@click.option("--group", required=True, help="Group of the token holder.")
@click.option("--user", required=True, help="User of the token holder.")
@click.option("--subject", help="Subject (default GROUP:USER).")
@click.option("--root", is_flag=True, help="Grant every action on every resource.")
@click.option("--action", "actions", multiple=True, help="Allowed action glob (repeatable).")
@click.option("--resource", "resources", multiple=True, help="Allowed resource glob (repeatable, default *).")
@click.option("--ttl", type=click.IntRange(min=0), help="Lifetime in seconds (0 = never expires).")
@click.option("--issued-by", default="cli", show_default=True, help="Recorded issuer.")
@click.option("--write-limit", type=click.IntRange(min=0), help="Maximum events this token may write.")
@click.option("--keep-alive", is_flag=True, help="Recorded only (reserved).")
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
def generate(
    group: str, user: str, subject: str | None, root: bool, actions: tuple[str, ...],
    resources: tuple[str, ...], ttl: int | None, issued_by: str, write_limit: int | None,
    keep_alive: bool, as_json: bool,
) -> None:
    """Generate a new token"""
    if not root and not actions:
        raise CommandError(NON_ROOT_NEEDS_ACTION)
    from eventdbx.auth.keys import signing_keys
    from eventdbx.auth.records import TokenLimits, TokenRequest
    from eventdbx.auth.tokens import issue_token
    from eventdbx.store import tokens as ledger

    settings = cli_context().settings()
    dek = settings.data_encryption_key
    request = TokenRequest(
        group=group, user=user, subject=subject or None, root=root, actions=actions,
        resources=resources or None, ttl_secs=ttl, issued_by=issued_by,
        limits=TokenLimits(write_events=write_limit, keep_alive=keep_alive),
    )
    record = issue_token(signing_keys(settings.auth), settings.auth, request, time.time())
    with _database(settings) as db, db.write() as conn:
        ledger.insert_token(conn, record, dek=dek)
    _emit(record, as_json)


def _expired(record: TokenRecord, now: float) -> bool:
    if record.expires_at is None:
        return False
    from eventdbx.domain.timefmt import to_epoch_micros

    return to_epoch_micros(record.expires_at) < now * 1_000_000


@token.command(name="list", help="List configured tokens")
@click.option("--json", "as_json", is_flag=True, help="Print records as JSON.")
def list_cmd(as_json: bool) -> None:
    """List configured tokens"""
    from eventdbx.auth.records import TokenStatus
    from eventdbx.store import tokens as ledger

    settings = cli_context().settings()
    dek = settings.data_encryption_key
    with _database(settings) as db, db.read() as conn:
        records = ledger.list_tokens(conn, dek=dek)
    now = time.time()
    shown = [r for r in records if not (r.status is TokenStatus.REVOKED and _expired(r, now))]
    if as_json:
        _print_json([r.to_dict() for r in shown])
    elif not shown:
        click.echo("no issued tokens")
    else:
        for record in shown:
            click.echo(render_record(record))


@token.command(name="revoke", help="Revoke an active token")
@click.argument("token_or_jti")
@click.option("--reason", help="Why the token is revoked.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def revoke(token_or_jti: str, reason: str | None, as_json: bool) -> None:
    """Revoke an active token"""
    from eventdbx.store import tokens as ledger

    settings = cli_context().settings()
    dek = settings.data_encryption_key
    revoked_at = _now_ts()
    with _database(settings) as db, db.write() as conn:
        found = ledger.find_token(conn, token_or_jti, dek=dek)
        record = ledger.revoke(conn, found.jti, reason, revoked_at, dek=dek) if found else None
    if record is None:
        raise InvalidTokenError()
    if as_json:
        _print_json({"reason": reason, "revoked": True, "revoked_at": revoked_at, "token": token_or_jti})
    else:
        click.echo(f"revoked {record.jti}")


def _old_ttl(record: TokenRecord) -> int:
    """The old token's `exp − iat`, or 0 (never) when it had no expiry."""
    from eventdbx.auth.tokens import token_claims

    try:
        claims = token_claims(record.token)
    except InvalidTokenError:
        claims = {}
    exp, iat = claims.get("exp"), claims.get("iat")
    if isinstance(exp, int) and isinstance(iat, int):
        return max(exp - iat, 1)
    if record.expires_at is None:
        return 0
    from eventdbx.domain.timefmt import to_epoch_micros

    return max((to_epoch_micros(record.expires_at) - to_epoch_micros(record.issued_at)) // 1_000_000, 1)


@token.command(
    name="refresh", help="Refresh an existing token (revokes the prior token)",
    short_help="Refresh an existing token (revokes the prior token)",
)
@click.option("--token", "token", required=True, help="Token or jti to refresh.")
@click.option("--ttl", type=click.IntRange(min=0), help="Lifetime of the replacement (default: the old one's).")
@click.option("--json", "as_json", is_flag=True, help="Print the new record as JSON.")
def refresh(token: str, ttl: int | None, as_json: bool) -> None:
    """Refresh an existing token (revokes the prior token)"""
    from eventdbx.auth.keys import signing_keys
    from eventdbx.auth.records import TokenRequest, TokenStatus
    from eventdbx.auth.tokens import issue_token
    from eventdbx.store import tokens as ledger

    settings = cli_context().settings()
    keys = signing_keys(settings.auth)
    dek = settings.data_encryption_key
    with _database(settings) as db, db.write() as conn:
        old = ledger.find_token(conn, token, dek=dek)
        if old is None or old.status is not TokenStatus.ACTIVE:
            raise InvalidTokenError()
        request = TokenRequest(
            group=old.group, user=old.user, subject=old.subject, root=old.root, actions=old.actions,
            resources=old.resources, ttl_secs=_old_ttl(old) if ttl is None else ttl,
            issued_by=old.issued_by, limits=old.limits,
        )
        record = issue_token(keys, settings.auth, request, time.time())
        ledger.revoke(conn, old.jti, "refreshed", _now_ts(), dek=dek)
        ledger.insert_token(conn, record, dek=dek)
    _emit(record, as_json, heading="issued replacement token:")
