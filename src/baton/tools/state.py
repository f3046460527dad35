"""Saved state objects (PM, orchestrator, per-group, investigation), every version kept."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import Field

from baton.clock import utc_now
from baton.errors import NotFound
from baton.models import GroupScope, IdempotencyKey, Input, Output, SessionId
from baton.operations import operation, require_escaped_fit
from baton.store import Store, fetch_all, fetch_one
from baton.tools._common import dump_object, require_open_session, require_session

StateType = Annotated[Literal["pm", "orchestrator", "group_status", "investigation"],
                     Field(description="Whose state: the PM's, the orchestrator's, a group's, an investigation's.")]


class SaveStateInput(Input):
    session_id: SessionId
    state_type: StateType
    group_id: GroupScope = "global"
    state: dict[str, Any] = Field(description="The whole object; it becomes the latest version.")
    idempotency_key: IdempotencyKey | None = None


class StateSaved(Output):
    version: int
    saved_at: str
    idempotent: bool = False


@operation("save-state", title="Save state")
async def save_state(store: Store, args: SaveStateInput) -> StateSaved:
    """Save a new version of a state object; every earlier version is kept as history. Not after the session ended."""
    text = dump_object(args.state, "state")
    require_escaped_fit(text, "state")
    saved_at = utc_now()
    async with store.write() as conn:
        await require_session(conn, args.session_id)

        async def write() -> dict[str, Any]:
            await require_open_session(conn, args.session_id, "state saves")
            # The version is computed inside the write transaction, so concurrent saves never collide.
            (row,) = await fetch_all(
                conn,
                "INSERT INTO state_snapshots (session_id, state_type, group_id, version, state, saved_at)"
                " SELECT ?, ?, ?, coalesce(max(version), 0) + 1, ?, ? FROM state_snapshots"
                " WHERE session_id = ? AND state_type = ? AND group_id = ? RETURNING version",
                (args.session_id, args.state_type, args.group_id, text, saved_at,
                 args.session_id, args.state_type, args.group_id),
            )
            return {"version": row[0], "saved_at": saved_at}

        result, replayed = await store.idempotent(
            conn, session_id=args.session_id, operation="save-state", key=args.idempotency_key,
            payload=args.model_dump(exclude={"idempotency_key"}), write=write,
        )
    return StateSaved(**result, idempotent=replayed)


class GetStateInput(Input):
    session_id: SessionId
    state_type: StateType
    group_id: GroupScope = "global"
    version: Annotated[int, Field(ge=1)] | None = Field(None, description="Default: the latest version.")


class SavedState(Output):
    state: dict[str, Any]
    version: int
    saved_at: str


async def latest_state(conn: Any, session_id: str, state_type: str, group_id: str = "global",
                       version: int | None = None) -> SavedState | None:
    sql = (
        "SELECT state, version, saved_at FROM state_snapshots"
        " WHERE session_id = ? AND state_type = ? AND group_id = ?"
    )
    params: tuple[Any, ...] = (session_id, state_type, group_id)
    if version is not None:
        sql += " AND version = ?"
        params += (version,)
    row = await fetch_one(conn, sql + " ORDER BY version DESC LIMIT 1", params)
    if row is None:
        return None
    return SavedState(state=json.loads(row["state"]), version=row["version"], saved_at=row["saved_at"])


@operation("get-state", title="Get state", read_only=True, idempotent=True)
async def get_state(store: Store, args: GetStateInput) -> SavedState:
    """Read the latest (or a given) version of a saved state object."""
    async with store.read() as conn:
        await require_session(conn, args.session_id)
        found = await latest_state(conn, args.session_id, args.state_type, args.group_id, args.version)
    if found is None:
        which = f"version {args.version} of " if args.version else ""
        raise NotFound(
            f"no {which}{args.state_type} state for group {args.group_id!r} in session {args.session_id!r}"
        )
    return found
