"""Helpers shared by the full-profile operation modules: ranked-list paging and project scope."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from baton.clock import format_utc
from baton.errors import InvalidInput
from baton.operations import cursor_position, encode_cursor
from baton.tools._common import require_session


def page_offset(cursor: str | None) -> int:
    """Where a ranked list resumes. Ranked lists (not id-ordered) page by position."""
    offset = cursor_position(cursor, "offset", 0)
    if offset < 0:
        raise InvalidInput("cursor is not one this operation issued; pass next_cursor from the previous page")
    return offset


def next_page(offset: int, shown: int, more: bool) -> str | None:
    return encode_cursor({"offset": offset + shown}) if more and shown else None


async def resolve_project(conn: Any, project: str | None, session_id: str | None) -> str:
    """The project a learning operation is keyed by: given directly, or the session's project."""
    if project is not None:
        if session_id is not None:
            await require_session(conn, session_id)
        return project
    if session_id is None:
        raise InvalidInput("give project, or session_id of a session that has a project")
    row = await require_session(conn, session_id)
    if row["project"] is None:
        raise InvalidInput(
            f"session {session_id!r} has no project; pass project explicitly (learning is keyed by project)"
        )
    return str(row["project"])


def _utc_timestamp(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("not an ISO-8601 time; use e.g. 2026-11-22 or 2026-11-22T05:42:55Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return format_utc(moment)
    except OverflowError:  # a year-9999 or year-1 time whose offset carries it past the calendar in UTC
        raise ValueError("out of range in UTC; use a time from 0001-01-01 to 9999-12-31 UTC") from None


Timestamp = Annotated[
    str,
    Field(max_length=40, description="ISO-8601 time (UTC unless an offset is given), e.g. 2026-11-22T05:00:00Z."),
    BeforeValidator(_utc_timestamp),
]
