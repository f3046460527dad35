"""API keys for the HTTP transport, and the audit trail: `baton keys create|list|revoke`, `baton audit`.

A key is `baton_<key_id>_<secret>`: `key_id` is public (it names the key in `keys list`, in the
audit trail and in logs), the secret is 32 random bytes. Only the SHA-256 of the whole key is
stored; it is printed once, by `keys create`. Every HTTP request looks its key up in the database
(by digest, then compared in constant time), so `keys revoke` takes effect on the next request in
every server process. Scopes: `read` may call read-only tools, `write` every tool (and implies read).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import re
import secrets
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from baton.clock import format_utc, utc_now
from baton.errors import BatonError, InvalidInput, NotFound
from baton.store import Store, fetch_all, fetch_one

log = logging.getLogger(__name__)

PREFIX = "baton_"
_KEY = re.compile(r"^baton_(k[0-9a-f]{10})_[A-Za-z0-9_-]{43}$")
SCOPES = ("read", "write")
MAX_EXPIRY = timedelta(days=3650)
# last_used_at is refreshed at most this often per key: one small write a minute, not one per request.
TOUCH_INTERVAL = timedelta(seconds=60)
_COLUMNS = "key_id, agent_id, scopes, note, created_at, expires_at, revoked_at, last_used_at"


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    agent_id: str
    scopes: frozenset[str]


def sha256(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_scopes(text: str) -> str:
    """`read`, `write` or `read,write` -> the stored form (`write` implies `read`)."""
    names = {part.strip() for part in text.split(",") if part.strip()}
    unknown = names - set(SCOPES)
    if unknown or not names:
        raise InvalidInput(f"--scopes {text!r}: expected read, write or read,write")
    return "read,write" if "write" in names else "read"


def parse_duration(text: str) -> timedelta:
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text)
    if not match or int(match.group(1)) == 0:
        raise InvalidInput(f"--expires-in {text!r}: expected a positive duration such as 30d, 12h, 2w or 90m")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[match.group(2)]
    duration = timedelta(**{unit: int(match.group(1))})
    if duration > MAX_EXPIRY:
        raise InvalidInput(f"--expires-in {text!r}: at most {MAX_EXPIRY.days}d")
    return duration


def _agent_id(text: str) -> str:
    from pydantic import TypeAdapter, ValidationError

    from baton.models import AgentId

    try:
        return str(TypeAdapter(AgentId).validate_python(text))
    except ValidationError as exc:
        raise InvalidInput(f"--agent-id {text!r}: {exc.errors()[0]['msg']}") from None


def _row(row: Any) -> dict[str, Any]:
    item = dict(row)
    item["scopes"] = item["scopes"].split(",")
    now = utc_now()
    item["active"] = item["revoked_at"] is None and (item["expires_at"] is None or item["expires_at"] > now)
    return item


async def create(store: Store, agent_id: str, scopes: str = "read,write", expires_in: timedelta | None = None,
                 note: str | None = None) -> dict[str, Any]:
    """A new key for `agent_id`; the result is the only place the key itself ever appears."""
    key_id = "k" + secrets.token_hex(5)
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    now = datetime.now(UTC)
    expires_at = format_utc(now + expires_in) if expires_in is not None else None
    async with store.write() as conn:
        await conn.execute(
            "INSERT INTO api_keys (key_id, key_sha256, agent_id, scopes, note, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (key_id, sha256(key), _agent_id(agent_id), parse_scopes(scopes), note, format_utc(now), expires_at))
        row = await fetch_one(conn, f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = ?", (key_id,))
    return {"key": key, **_row(row)}


async def list_keys(store: Store) -> list[dict[str, Any]]:
    async with store.read() as conn:
        rows = await fetch_all(conn, f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, key_id")
    return [_row(row) for row in rows]


async def revoke(store: Store, key_id: str) -> dict[str, Any]:
    """Revoke a key (again: no change, the first revocation time stays)."""
    async with store.write() as conn:
        await conn.execute("UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                           (utc_now(), key_id))
        row = await fetch_one(conn, f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = ?", (key_id,))
    if row is None:
        raise NotFound(f"no API key {key_id!r}; `baton keys list` shows them")
    return _row(row)


async def verify(store: Store, key: str) -> ApiKey | None:
    """The key's identity if it is known, not revoked and not expired; None otherwise.

    Never logs or raises with the key in it: a caller's bad key is just None (HTTP 401).
    """
    if _KEY.fullmatch(key) is None:
        return None
    wanted = sha256(key)
    async with store.read() as conn:
        row = await fetch_one(conn, "SELECT key_id, key_sha256, agent_id, scopes, expires_at, revoked_at,"
                                    " last_used_at FROM api_keys WHERE key_sha256 = ?", (wanted,))
    if row is None or not hmac.compare_digest(row["key_sha256"], wanted):
        return None
    now = datetime.now(UTC)
    if row["revoked_at"] is not None or (row["expires_at"] is not None and row["expires_at"] <= format_utc(now)):
        return None
    if row["last_used_at"] is None or row["last_used_at"] < format_utc(now - TOUCH_INTERVAL):
        await _touch(store, row["key_id"], format_utc(now))
    return ApiKey(key_id=row["key_id"], agent_id=row["agent_id"], scopes=frozenset(row["scopes"].split(",")))


async def _touch(store: Store, key_id: str, now: str) -> None:
    try:
        async with store.write() as conn:
            await conn.execute("UPDATE api_keys SET last_used_at = ? WHERE key_id = ?", (now, key_id))
    except BatonError as exc:  # bookkeeping only: a busy or read-only database must not refuse the request
        log.warning("could not record the use of key %s: %s", key_id, exc)


async def count_active(store: Store) -> int:
    async with store.read() as conn:
        row = await fetch_one(conn, "SELECT count(*) FROM api_keys WHERE revoked_at IS NULL"
                                    " AND (expires_at IS NULL OR expires_at > ?)", (utc_now(),))
    return int(row[0]) if row is not None else 0


async def audit(store: Store, *, session_id: str | None = None, agent_id: str | None = None,
                tool: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Audit rows, newest first: who (agent, key, transport) wrote through which tool, when."""
    where, params = [], []
    for column, value in (("session_id", session_id), ("agent_id", agent_id), ("tool", tool)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    sql = ("SELECT audit_id, at, agent_id, key_id, via, tool, session_id FROM audit_log"
           + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY audit_id DESC LIMIT ?")
    async with store.read() as conn:
        rows = await fetch_all(conn, sql, (*params, limit))
    return [dict(row) for row in rows]


# -- the commands ---------------------------------------------------------------------------------


def _parser(command: str) -> argparse.ArgumentParser:
    if command == "audit":
        parser = argparse.ArgumentParser(prog="baton audit", description="Who wrote what, when, through which tool "
                                                                           "(newest first).")
        parser.add_argument("--session", help="Only this session's writes.")
        parser.add_argument("--agent", help="Only this agent's writes (a key's agent id, or local:<user>).")
        parser.add_argument("--tool", help="Only writes through this tool.")
        parser.add_argument("--limit", type=int, default=100, help="At most this many rows (1..10000, default 100).")
        parser.add_argument("--db", help="Database file (default: $BATON_DB, else the user data directory's baton.db).")
        return parser
    parser = argparse.ArgumentParser(prog="baton keys", description="API keys for `baton serve --transport http`.")
    actions = parser.add_subparsers(dest="action", required=True)
    create_parser = actions.add_parser("create", help="Create a key (printed once; only its hash is stored).")
    create_parser.add_argument("--agent-id", required=True,
                               help="The agent the key acts as (recorded with its writes).")
    create_parser.add_argument("--scopes", default="read,write", help="read, or read,write (default).")
    create_parser.add_argument("--expires-in", help="e.g. 30d, 12h, 2w (default: never).")
    create_parser.add_argument("--note", help="What the key is for (shown by `keys list`).")
    actions.add_parser("list", help="Every key (never the key itself).")
    revoke_parser = actions.add_parser("revoke", help="Revoke a key: refused on its next request, by every server.")
    revoke_parser.add_argument("key_id")
    for sub in actions.choices.values():
        sub.add_argument("--db", help="Database file (default: $BATON_DB, else the user data directory's baton.db).")
    return parser


def main(command: str, argv: list[str]) -> int:
    import anyio

    from baton.caller import calling, local_caller
    from baton.paths import resolve_db_path

    args = _parser(command).parse_args(argv)

    async def execute() -> Any:
        action = "audit" if command == "audit" else args.action
        if action == "create":  # checked before the database is opened (or created)
            expires = parse_duration(args.expires_in) if args.expires_in else None
            parse_scopes(args.scopes)
            _agent_id(args.agent_id)
        if action == "audit" and not 1 <= args.limit <= 10_000:
            raise InvalidInput(f"--limit {args.limit}: expected 1..10000")
        async with await Store.open(resolve_db_path(args.db)) as store:
            if action == "audit":
                return {"items": await audit(store, session_id=args.session, agent_id=args.agent, tool=args.tool,
                                             limit=args.limit)}
            if action == "list":
                return {"items": await list_keys(store)}
            with calling(local_caller("cli"), f"keys-{action}", {}):  # key management is audited like any write
                if action == "create":
                    return await create(store, args.agent_id, args.scopes, expires, args.note)
                return await revoke(store, args.key_id)

    try:
        result = anyio.run(execute)
    except BatonError as exc:
        print(json.dumps(exc.as_json()), file=sys.stderr)
        return exc.exit_code
    print(json.dumps(result, indent=2 if sys.stdout.isatty() else None, ensure_ascii=False))
    if "key" in result:
        print("Store the key now: it is not shown again (only its hash is kept).", file=sys.stderr)
    return 0
