"""Helpers shared by the operation modules: session lookup, JSON columns, size limits."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import aiosqlite

from baton.errors import InvalidInput, InvalidTransition, NotFound
from baton.store import fetch_one

# Largest free-text content accepted in one write (reads cut it to max_chars anyway).
MAX_CONTENT_CHARS = 5_000_000
# Largest JSON object (metadata, payload, state) accepted in one write: it must fit in one response.
MAX_OBJECT_CHARS = 30_000


async def require_session(conn: aiosqlite.Connection, session_id: str) -> sqlite3.Row:
    row = await fetch_one(conn, "SELECT * FROM sessions WHERE session_id = ?", (session_id,))
    if row is None:
        raise NotFound(f"session {session_id!r} does not exist; create it with create-session or check list-sessions")
    return row


# Sessions in these statuses have ended. They keep accepting history (logs and token usage, marked
# after_end); everything else about them (task groups, criteria, state, plans, context) is frozen.
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})


async def require_open_session(conn: aiosqlite.Connection, session_id: str, what: str) -> sqlite3.Row:
    """The session, unless it has ended: then `what` (e.g. "state saves") is refused."""
    row = await require_session(conn, session_id)
    if row["status"] in TERMINAL_STATUSES:
        raise InvalidTransition(
            f"session {session_id!r} is {row['status']}; a finished session accepts only logs and token usage, "
            f"not {what}; start a new session to continue the work"
        )
    return row


def dump_object(value: dict[str, Any] | list[Any], what: str, limit: int = MAX_OBJECT_CHARS) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if len(text) > limit:
        raise InvalidInput(
            f"{what} is {len(text)} characters of JSON, over the {limit} limit; store large data in a file "
            "and record its path"
        )
    return text


def load_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def check_content(content: str, what: str = "content") -> None:
    if len(content) > MAX_CONTENT_CHARS:
        raise InvalidInput(f"{what} is {len(content)} characters, over the {MAX_CONTENT_CHARS} limit")
