"""Context engineering: packages one agent leaves for others, and who consumed them when."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from baton.clock import utc_now
from baton.errors import Conflict, InvalidInput, NotFound
from baton.models import (
    DEFAULT_LIMIT,
    DEFAULT_MAX_CHARS,
    AgentId,
    AgentType,
    Cursor,
    GroupScope,
    IdempotencyKey,
    Input,
    Limit,
    MaxChars,
    Output,
    Page,
    SessionId,
    Text,
)
from baton.operations import cursor_position, cut_text, encode_cursor, fit_to_budget, operation
from baton.redact import redact, redact_all
from baton.store import Store, fetch_all, fetch_one
from baton.tools._common import MAX_CONTENT_CHARS, require_open_session, require_session

PackageType = Literal["research", "failures", "decisions", "handoff", "investigation"]
Priority = Literal["low", "medium", "high", "critical"]
PackageId = Annotated[int, Field(ge=1, description="package_id from save-context-package.")]
Iteration = Annotated[int, Field(ge=0, le=1_000_000)]


class SaveContextPackageInput(Input):
    session_id: SessionId
    package_type: PackageType = Field(description="What kind of knowledge it carries.")
    producer: AgentType = Field(description="Agent type that wrote the package.")
    consumers: Annotated[list[AgentType], Field(min_length=1, max_length=20)] = Field(
        description="Agent types the package is for; only they can consume it."
    )
    summary: Annotated[Text, Field(max_length=2000, description="Short summary (searchable).")]
    content: Annotated[Text, Field(max_length=MAX_CONTENT_CHARS)] | None = Field(
        None, description="The package inline (secrets are redacted). Give content or file_path."
    )
    file_path: Annotated[str, Field(min_length=1, max_length=1000)] | None = Field(
        None, description="Where the package is on disk; recorded as given, with its size if it exists."
    )
    group_id: GroupScope = "global"
    priority: Priority = Field("medium", description="Consumers get higher priorities first.")
    supersedes: PackageId | None = Field(None, description="package_id of the older version this one replaces.")
    idempotency_key: IdempotencyKey | None = None

    @model_validator(mode="after")
    def _content_or_file(self) -> SaveContextPackageInput:
        if (self.content is None) == (self.file_path is None):
            raise ValueError("give exactly one of content (inline) or file_path")
        return self


class ContextPackageSaved(Output):
    package_id: int
    version: int = Field(description="1, or the superseded package's version + 1.")
    supersedes: int | None
    size_bytes: int | None
    redacted: bool
    idempotent: bool


def _file_size(path: str) -> int | None:
    try:
        return Path(path).stat().st_size
    except (OSError, ValueError):
        return None


@operation("save-context-package", title="Save context package", profile="full")
async def save_context_package(store: Store, args: SaveContextPackageInput) -> ContextPackageSaved:
    """Leave a context package (research, failures, decisions, handoff, investigation) for other agents.

    Give the content inline or a file path. With supersedes, the new package replaces an older
    one (version + 1); the older one is then hidden from get-context-packages. Only the latest
    version can be superseded (conflict otherwise)."""
    content, content_redacted = (await redact_all([args.content]))[0] if args.content is not None else (None, False)
    summary, summary_redacted = redact(args.summary)
    was_redacted = content_redacted or summary_redacted
    size = len(content.encode()) if content is not None else _file_size(args.file_path or "")
    consumers = list(dict.fromkeys(args.consumers))
    async with store.write() as conn:
        await require_session(conn, args.session_id)

        async def write() -> dict[str, Any]:
            await require_open_session(conn, args.session_id, "context packages")
            version = 1
            if args.supersedes is not None:
                old = await _require_package(conn, args.session_id, args.supersedes)
                if old["superseded_by"] is not None:
                    raise Conflict(
                        f"package {args.supersedes} was already superseded by package {old['superseded_by']}; "
                        "supersede the latest version"
                    )
                version = old["version"] + 1
            cursor = await conn.execute(
                "INSERT INTO context_packages (session_id, group_id, package_type, priority, producer, summary,"
                " content, file_path, size_bytes, version, supersedes, redacted, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (args.session_id, args.group_id, args.package_type, args.priority, args.producer, summary,
                 content, args.file_path, size, version, args.supersedes, int(was_redacted), utc_now()),
            )
            package_id = cursor.lastrowid
            await conn.executemany(
                "INSERT INTO context_package_consumers (package_id, agent_type) VALUES (?, ?)",
                [(package_id, agent) for agent in consumers],
            )
            if args.supersedes is not None:
                await conn.execute("UPDATE context_packages SET superseded_by = ? WHERE package_id = ?",
                                   (package_id, args.supersedes))
            return {"package_id": package_id, "version": version, "supersedes": args.supersedes,
                    "size_bytes": size, "redacted": was_redacted}

        result, replayed = await store.idempotent(
            conn, session_id=args.session_id, operation="save-context-package", key=args.idempotency_key,
            payload=args.model_dump(exclude={"idempotency_key"}), write=write,
        )
    return ContextPackageSaved(**result, idempotent=replayed)


async def _require_package(conn: Any, session_id: str, package_id: int) -> sqlite3.Row:
    row = await fetch_one(conn, "SELECT * FROM context_packages WHERE package_id = ? AND session_id = ?",
                          (package_id, session_id))
    if row is None:
        raise NotFound(f"context package {package_id} does not exist in session {session_id!r}; "
                       "see get-context-packages")
    return row


async def _require_consumer(conn: Any, package_id: int, agent_type: str) -> sqlite3.Row:
    row = await fetch_one(conn, "SELECT * FROM context_package_consumers WHERE package_id = ? AND agent_type = ?",
                          (package_id, agent_type))
    if row is None:
        consumers = [r[0] for r in await fetch_all(
            conn, "SELECT agent_type FROM context_package_consumers WHERE package_id = ? ORDER BY agent_type",
            (package_id,))]
        raise InvalidInput(
            f"{agent_type} is not a consumer of context package {package_id} (consumers: {', '.join(consumers)}); "
            "only a listed consumer can consume it"
        )
    return row


class ContextPackage(Output):
    package_id: int
    session_id: str
    group_id: str
    package_type: PackageType
    priority: Priority
    producer: str
    consumers: list[str]
    summary: str
    content: str | None
    file_path: str | None
    size_bytes: int | None
    version: int
    supersedes: int | None
    superseded_by: int | None
    consumed_at: str | None = Field(description="When the requesting agent consumed it; null if not yet.")
    truncated: bool
    redacted: bool
    created_at: str


class GetContextPackagesInput(Input):
    session_id: SessionId
    agent_type: AgentType = Field(description="The consumer asking: only packages addressed to it are returned.")
    group_id: GroupScope | None = Field(None, description="A group: its packages plus session-global ones.")
    package_type: PackageType | None = Field(None, description="Only this kind.")
    include_consumed: bool = Field(False, description="Also return packages this agent already consumed.")
    include_superseded: bool = Field(False, description="Also return older versions that were superseded.")
    limit: Limit = DEFAULT_LIMIT
    cursor: Cursor | None = None
    max_chars: MaxChars = DEFAULT_MAX_CHARS


@operation("get-context-packages", title="Get context packages", profile="full", read_only=True, idempotent=True)
async def get_context_packages(store: Store, args: GetContextPackagesInput) -> Page[ContextPackage]:
    """Packages addressed to an agent that it has not consumed yet, most important first.

    Ranked critical > high > medium > low, then newest. With group_id: that group's packages and
    the session-global ones. include_consumed also returns those already consumed."""
    where = ["p.session_id = :session_id"]
    params: dict[str, Any] = {"session_id": args.session_id, "agent": args.agent_type, "max_chars": args.max_chars,
                              "limit": args.limit + 1}
    if args.cursor is not None:
        # Keyset, not offset: consuming the first page's packages must not make the next page skip any.
        where.append("(p.priority_rank < :rank OR (p.priority_rank = :rank AND p.package_id < :before))")
        params["rank"] = cursor_position(args.cursor, "rank", 0)
        params["before"] = cursor_position(args.cursor, "before", 0)
    if args.group_id is not None:
        where.append("p.group_id IN (:group_id, 'global')")
        params["group_id"] = args.group_id
    if args.package_type is not None:
        where.append("p.package_type = :package_type")
        params["package_type"] = args.package_type
    if not args.include_consumed:
        where.append("c.consumed_at IS NULL")
    if not args.include_superseded:
        where.append("p.superseded_by IS NULL")
    sql = (
        "SELECT p.package_id, p.priority_rank, p.session_id, p.group_id, p.package_type, p.priority, p.producer,"
        " p.summary,"
        " substr(p.content, 1, :max_chars + 1) AS content, p.file_path, p.size_bytes, p.version, p.supersedes,"
        " p.superseded_by, p.redacted, p.created_at, c.consumed_at"
        " FROM context_packages p JOIN context_package_consumers c"
        " ON c.package_id = p.package_id AND c.agent_type = :agent"
        f" WHERE {' AND '.join(where)}"
        " ORDER BY p.priority_rank DESC, p.package_id DESC LIMIT :limit"
    )
    async with store.read() as conn:
        await require_session(conn, args.session_id)
        async with conn.execute(sql, params) as cursor:
            rows = list(await cursor.fetchall())
        shown = rows[: args.limit]
        consumers: dict[int, list[str]] = {}
        if shown:
            marks = ", ".join("?" for _ in shown)
            for row in await fetch_all(
                conn,
                f"SELECT package_id, agent_type FROM context_package_consumers WHERE package_id IN ({marks})"
                " ORDER BY agent_type",
                tuple(r["package_id"] for r in shown),
            ):
                consumers.setdefault(row["package_id"], []).append(row["agent_type"])
    items = []
    for row in shown:
        content, cut = cut_text(row["content"], args.max_chars)
        items.append(ContextPackage(
            **{k: row[k] for k in ("package_id", "session_id", "group_id", "package_type", "priority", "producer",
                                   "summary", "file_path", "size_bytes", "version", "supersedes", "superseded_by",
                                   "consumed_at", "created_at")},
            consumers=consumers.get(row["package_id"], []), content=content, truncated=cut,
            redacted=bool(row["redacted"]),
        ))
    items, over = fit_to_budget(items)
    more = over or len(rows) > args.limit
    next_cursor = None
    if more and items:
        last = shown[len(items) - 1]
        next_cursor = encode_cursor({"rank": last["priority_rank"], "before": last["package_id"]})
    return Page[ContextPackage](items=items, next_cursor=next_cursor, truncated=over)


class MarkContextConsumedInput(Input):
    session_id: SessionId
    package_id: PackageId
    agent_type: AgentType = Field(description="The consumer; it must be one of the package's consumers.")
    agent_id: AgentId | None = None
    iteration: Iteration | None = Field(None, description="The consumer's iteration that read it.")


class ContextConsumed(Output):
    package_id: int
    agent_type: str
    consumed_at: str
    iteration: int | None = Field(description="The iteration recorded with the first consumption, if any.")
    already_consumed: bool = Field(description="True when it had been marked before (the first time is kept).")


@operation("mark-context-consumed", title="Mark context package consumed", profile="full", idempotent=True)
async def mark_context_consumed(store: Store, args: MarkContextConsumedInput) -> ContextConsumed:
    """Record that a consumer agent has read a package, so it is no longer returned as unconsumed.

    An agent that is not one of the package's consumers is an invalid error. Marking again keeps
    the first time."""
    async with store.write() as conn:
        await require_session(conn, args.session_id)
        await _require_package(conn, args.session_id, args.package_id)
        before = await _require_consumer(conn, args.package_id, args.agent_type)
        if before["consumed_at"] is None:  # marking again changes nothing, also after the session ended
            await require_open_session(conn, args.session_id, "context consumption")
        consumed_at, iteration = await _mark(conn, args.package_id, args.agent_type, args.agent_id, args.iteration)
    return ContextConsumed(package_id=args.package_id, agent_type=args.agent_type, consumed_at=consumed_at,
                           iteration=iteration, already_consumed=before["consumed_at"] is not None)


async def _mark(conn: Any, package_id: int, agent_type: str, agent_id: str | None,
                iteration: int | None) -> tuple[str, int | None]:
    """Mark consumed; the first consumption's time, agent id and iteration are kept."""
    first = "consumed_at IS NULL"
    row = await fetch_one(
        conn,
        f"UPDATE context_package_consumers SET consumed_at = coalesce(consumed_at, ?),"
        f" consumed_by = CASE WHEN {first} THEN ? ELSE consumed_by END,"
        f" iteration = CASE WHEN {first} THEN ? ELSE iteration END"
        " WHERE package_id = ? AND agent_type = ? RETURNING consumed_at, iteration",
        (utc_now(), agent_id, iteration, package_id, agent_type),
    )
    assert row is not None
    return str(row[0]), row[1]


class SaveConsumptionInput(Input):
    session_id: SessionId
    package_id: PackageId
    agent_type: AgentType
    iteration: Iteration = Field(description="The consumer's iteration that used the package.")
    group_id: GroupScope = "global"
    agent_id: AgentId | None = None
    tokens: Annotated[int, Field(ge=0, le=10**9)] | None = Field(None, description="Tokens the package cost.")


class ConsumptionSaved(Output):
    consumption_id: int
    created: bool = Field(description="False when this (package, agent, group, iteration) was already recorded.")
    consumed_at: str


@operation("save-consumption", title="Save context consumption", profile="full", idempotent=True)
async def save_consumption(store: Store, args: SaveConsumptionInput) -> ConsumptionSaved:
    """Record that a consumer used a package in one iteration (also marks it consumed).

    Idempotent on (package, agent_type, group_id, iteration): the same record again returns the
    first with created=false; different details for the same iteration are a conflict."""
    async with store.write() as conn:
        await require_session(conn, args.session_id)
        await _require_package(conn, args.session_id, args.package_id)
        await _require_consumer(conn, args.package_id, args.agent_type)
        key = (args.package_id, args.agent_type, args.group_id, args.iteration)
        existing = await fetch_one(
            conn,
            "SELECT * FROM context_consumption WHERE package_id = ? AND agent_type = ? AND group_id = ?"
            " AND iteration = ?",
            key,
        )
        if existing is not None:
            if (existing["agent_id"], existing["tokens"]) != (args.agent_id, args.tokens):
                raise Conflict(
                    f"consumption of package {args.package_id} by {args.agent_type} in iteration {args.iteration} "
                    "was already recorded with a different agent_id or tokens"
                )
            return ConsumptionSaved(consumption_id=existing["consumption_id"], created=False,
                                    consumed_at=existing["consumed_at"])
        await require_open_session(conn, args.session_id, "context consumption")
        now = utc_now()
        cursor = await conn.execute(
            "INSERT INTO context_consumption (session_id, package_id, agent_type, agent_id, group_id, iteration,"
            " tokens, consumed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (args.session_id, args.package_id, args.agent_type, args.agent_id, args.group_id, args.iteration,
             args.tokens, now),
        )
        assert cursor.lastrowid is not None
        await _mark(conn, args.package_id, args.agent_type, args.agent_id, args.iteration)
    return ConsumptionSaved(consumption_id=cursor.lastrowid, created=True, consumed_at=now)
