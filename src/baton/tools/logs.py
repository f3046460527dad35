"""Logs: what agents said (interactions), why (reasoning) and what happened (events)."""

from __future__ import annotations

import json
import sqlite3
from typing import Annotated, Any, Literal

from pydantic import Field

from baton.clock import utc_now
from baton.errors import Conflict
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
from baton.store import Store, fetch_all, fetch_one, request_digest
from baton.tools._common import MAX_CONTENT_CHARS, TERMINAL_STATUSES, dump_object, load_json, require_session

LogType = Literal["interaction", "reasoning", "event"]
Phase = Literal["understanding", "approach", "decisions", "risks", "blockers", "pivot", "completion"]
Confidence = Literal["high", "medium", "low"]
Content = Annotated[Text, Field(max_length=MAX_CONTENT_CHARS, description="What the agent said or did.")]
Iteration = Annotated[int, Field(ge=0, le=1_000_000, description="The agent's revision round.")]


class LogWritten(Output):
    log_id: int
    session_id: str
    timestamp: str
    content_length: int
    redacted: bool
    idempotent: bool = Field(description="True when this was a retry: the first write's result, nothing new written.")


class LogInteractionInput(Input):
    session_id: SessionId
    agent_type: AgentType
    content: Content
    agent_id: AgentId | None = None
    group_id: GroupScope | None = None
    iteration: Iteration | None = None
    idempotency_key: IdempotencyKey | None = None


async def insert_log(store: Store, operation_name: str, fields: dict[str, Any], key: str | None,
                     redacted_elsewhere: bool = False) -> LogWritten:
    """Insert one interaction or reasoning row (redacted), once per idempotency key.
    `redacted_elsewhere`: the caller already redacted another field of the row (reasoning references)."""
    [(content, was_redacted)] = await redact_all([fields["content"]])
    was_redacted = was_redacted or redacted_elsewhere
    row = {**fields, "content": content, "content_length": len(content), "redacted": int(was_redacted)}
    async with store.write() as conn:
        session = await require_session(conn, fields["session_id"])

        async def write() -> dict[str, Any]:
            row["after_end"] = int(session["status"] in TERMINAL_STATUSES)  # late history is kept, told apart
            row["timestamp"] = utc_now()
            columns = ", ".join(row)
            marks = ", ".join("?" for _ in row)
            cursor = await conn.execute(f"INSERT INTO logs ({columns}) VALUES ({marks})", tuple(row.values()))
            return {
                "log_id": cursor.lastrowid,
                "session_id": row["session_id"],
                "timestamp": row["timestamp"],
                "content_length": row["content_length"],
                "redacted": was_redacted,
            }

        result, replayed = await store.idempotent(
            conn,
            session_id=fields["session_id"],
            operation=operation_name,
            key=key,
            payload=fields,
            write=write,
        )
    return LogWritten(**result, idempotent=replayed)


@operation("log-interaction", title="Log agent interaction")
async def log_interaction(store: Store, args: LogInteractionInput) -> LogWritten:
    """Record what an agent said or did in a session (secrets are redacted before storage)."""
    fields = args.model_dump(exclude={"idempotency_key"})
    return await insert_log(store, "log-interaction", {**fields, "log_type": "interaction"}, args.idempotency_key)


class BatchEntry(Input):
    agent_type: AgentType
    content: Content
    agent_id: AgentId | None = None
    group_id: GroupScope | None = None
    iteration: Iteration | None = None
    idempotency_key: IdempotencyKey | None = None


MAX_BATCH = 1000


class LogInteractionsInput(Input):
    session_id: SessionId
    entries: Annotated[list[BatchEntry], Field(min_length=1, max_length=MAX_BATCH,
                                               description="In order; each as log-interaction takes it.")]


class LogsWritten(Output):
    session_id: str
    count: int
    log_ids: list[int] = Field(description="One per entry, in entry order.")
    timestamp: str
    redacted: list[int] = Field(description="Indexes of entries whose content had secrets redacted.")
    idempotent: list[int] = Field(description="Indexes of entries that were retries: nothing new written for them.")



@operation("log-interactions", title="Log many agent interactions", profile="full")
async def log_interactions(store: Store, args: LogInteractionsInput) -> LogsWritten:
    """Record many interactions of one session in one call and one transaction (up to 1000).

    Each entry is what log-interaction takes, with the same redaction and idempotency: an
    entry's idempotency_key is shared with log-interaction, so either may retry the other.
    All entries are written or none."""
    fields = [
        {**entry.model_dump(exclude={"idempotency_key"}), "session_id": args.session_id, "log_type": "interaction"}
        for entry in args.entries
    ]
    keys = [entry.idempotency_key for entry in args.entries]
    rows = []
    redacted_at = []
    redactions = await redact_all([entry["content"] for entry in fields])
    for index, entry in enumerate(fields):
        content, was_redacted = redactions[index]
        rows.append({**entry, "content": content, "content_length": len(content), "redacted": int(was_redacted)})
        if was_redacted:
            redacted_at.append(index)
    # aiosqlite costs a thread hop per statement, so the batch is a handful of statements, not one per entry.
    async with store.write() as conn:
        session = await require_session(conn, args.session_id)
        after_end = int(session["status"] in TERMINAL_STATUSES)
        stored = await _stored_keys(conn, args.session_id, {k for k in keys if k is not None})
        results: list[dict[str, Any] | None] = [None] * len(rows)
        replayed: list[int] = []
        first_use: dict[str, int] = {}
        fresh: list[int] = []
        for index, key in enumerate(keys):
            if key is None:
                fresh.append(index)
                continue
            if key in stored:
                earlier_hash = stored[key][0]
            elif key in first_use:
                earlier_hash = request_digest(fields[first_use[key]])
            else:
                first_use[key] = index
                fresh.append(index)
                continue
            if earlier_hash != request_digest(fields[index]):
                raise Conflict(
                    f"idempotency_key {key!r} (entry {index}) was already used for log-interaction in session "
                    f"{args.session_id} with a different payload; use a new key for a new write"
                )
            replayed.append(index)
        timestamp = utc_now()
        if fresh:
            before = await fetch_one(conn, "SELECT coalesce(max(log_id), 0) FROM logs")
            assert before is not None
            columns = [*rows[0], "after_end", "timestamp"]
            # Migration 0005: with search indexing paused the per-row trigger stands aside, and the new
            # logs are indexed by one statement (half the storage time of a batch; bench section 2).
            await conn.execute("INSERT INTO search_index_paused (paused) VALUES (1)")
            await conn.executemany(
                f"INSERT INTO logs ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
                [(*rows[i].values(), after_end, timestamp) for i in fresh],
            )
            await conn.execute("DELETE FROM search_index_paused")
            await conn.execute(INDEX_LOGS_AFTER, (before[0],))
            # Under the write lock nobody else inserts, and ids only grow: the new rows are exactly these.
            ids = [r[0] for r in await fetch_all(conn, "SELECT log_id FROM logs WHERE log_id > ? ORDER BY log_id",
                                                 (before[0],))]
            for index, log_id in zip(fresh, ids, strict=True):
                results[index] = {
                    "log_id": log_id,
                    "session_id": args.session_id,
                    "timestamp": timestamp,
                    "content_length": rows[index]["content_length"],
                    "redacted": bool(rows[index]["redacted"]),
                }
            await conn.executemany(
                "INSERT INTO idempotency_keys (session_id, operation, key, request_hash, response, created_at) "
                "VALUES (?, 'log-interaction', ?, ?, ?, ?)",
                [
                    (args.session_id, keys[i], request_digest(fields[i]), json.dumps(results[i]), timestamp)
                    for i in first_use.values()
                ],
            )
        for index in replayed:
            key = keys[index]
            assert key is not None
            results[index] = stored[key][1] if key in stored else results[first_use[key]]
    log_ids = [r["log_id"] for r in results if r is not None]
    return LogsWritten(
        session_id=args.session_id,
        count=len(log_ids),
        log_ids=log_ids,
        timestamp=timestamp,
        redacted=redacted_at,
        idempotent=replayed,
    )


INDEX_LOGS_AFTER = (
    "INSERT INTO search_index (rowid, content, kind, session_id, agent_type, group_id, source_id)"
    " SELECT log_id * 4 + 1, content, log_type, session_id, agent_type, group_id, log_id FROM logs"
    " WHERE log_id > ? AND log_type IN ('interaction', 'reasoning') AND content IS NOT NULL"
)  # the same rows and values as the logs_search_insert trigger


async def _stored_keys(conn: Any, session_id: str, keys: set[str]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Already-used log-interaction keys among `keys`: key -> (request hash, first result)."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    ordered = sorted(keys)
    for start in range(0, len(ordered), 500):  # SQLite's default limit on bound parameters is far above 500
        chunk = ordered[start : start + 500]
        rows = await fetch_all(
            conn,
            "SELECT key, request_hash, response FROM idempotency_keys WHERE session_id = ?"
            f" AND operation = 'log-interaction' AND key IN ({', '.join('?' for _ in chunk)})",
            (session_id, *chunk),
        )
        found.update({row["key"]: (row["request_hash"], json.loads(row["response"])) for row in rows})
    return found


class SaveReasoningInput(Input):
    session_id: SessionId
    agent_type: AgentType
    phase: Phase = Field(description="The part of the work it covers.")
    content: Annotated[Content, Field(description="The reasoning.")]
    group_id: GroupScope = "global"
    agent_id: AgentId | None = None
    iteration: Iteration | None = None
    confidence: Confidence | None = Field(None, description="How sure the agent is.")
    references: Annotated[list[Annotated[str, Field(max_length=1000)]], Field(max_length=100)] | None = Field(
        None, description="Files, URLs or log ids the reasoning relies on."
    )
    idempotency_key: IdempotencyKey | None = None


@operation("save-reasoning", title="Save agent reasoning")
async def save_reasoning(store: Store, args: SaveReasoningInput) -> LogWritten:
    """Record an agent's reasoning for one phase of its work on a group (secrets are redacted before
    storage)."""
    fields = args.model_dump(exclude={"idempotency_key", "references"})
    references = [redact(reference) for reference in args.references or []]
    fields["refs"] = None if args.references is None else json.dumps([text for text, _ in references])
    return await insert_log(store, "save-reasoning", {**fields, "log_type": "reasoning"}, args.idempotency_key,
                            redacted_elsewhere=any(was for _, was in references))


class SaveEventInput(Input):
    session_id: SessionId
    # Not `Text`: a pattern after its AfterValidator is enforced but left out of the published schema.
    event_type: Annotated[str, Field(max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$", description="e.g. merge_result.")]
    payload: dict[str, Any] = Field(description="The event's data.")
    group_id: GroupScope | None = None
    idempotency_key: IdempotencyKey | None = None


class EventWritten(Output):
    event_id: int
    idempotent: bool


@operation("save-event", title="Save event")
async def save_event(store: Store, args: SaveEventInput) -> EventWritten:
    """Record a structured event (e.g. a merge result or a review issue list) with a JSON payload."""
    payload_text = dump_object(args.payload, "payload")
    redacted_text, was_redacted = redact(payload_text)
    async with store.write() as conn:
        session = await require_session(conn, args.session_id)

        async def write() -> dict[str, Any]:
            cursor = await conn.execute(
                "INSERT INTO logs (session_id, log_type, group_id, event_type, payload, content_length, redacted,"
                " after_end, timestamp) VALUES (?, 'event', ?, ?, ?, 0, ?, ?, ?)",
                (args.session_id, args.group_id, args.event_type, redacted_text, int(was_redacted),
                 int(session["status"] in TERMINAL_STATUSES), utc_now()),
            )
            return {"event_id": cursor.lastrowid}

        result, replayed = await store.idempotent(
            conn,
            session_id=args.session_id,
            operation="save-event",
            key=args.idempotency_key,
            payload=args.model_dump(exclude={"idempotency_key"}),
            write=write,
        )
    return EventWritten(**result, idempotent=replayed)


class LogEntry(Output):
    log_id: int
    session_id: str
    log_type: LogType
    agent_type: str | None
    agent_id: str | None
    group_id: str | None
    iteration: int | None
    phase: Phase | None
    confidence: Confidence | None
    references: list[str] | None
    event_type: str | None
    payload: dict[str, Any] | None
    content: str | None
    content_length: int
    truncated: bool = Field(description="True when content or payload was cut to max_chars.")
    redacted: bool
    after_end: bool = Field(False, description="Written after the session ended.")
    timestamp: str

    @classmethod
    def from_row(cls, row: sqlite3.Row, max_chars: int) -> LogEntry:
        content, content_cut = cut_text(row["content"], max_chars)
        payload = load_json(row["payload"])
        payload_cut = row["payload"] is not None and len(row["payload"]) > max_chars
        if payload_cut:
            payload = {"_truncated_json": _cut_escaped(row["payload"], max_chars)}
        references, references_cut = _cut_references(load_json(row["refs"]), max_chars // 2)
        return cls(
            log_id=row["log_id"],
            session_id=row["session_id"],
            log_type=row["log_type"],
            agent_type=row["agent_type"],
            agent_id=row["agent_id"],
            group_id=row["group_id"],
            iteration=row["iteration"],
            phase=row["phase"],
            confidence=row["confidence"],
            references=references,
            event_type=row["event_type"],
            payload=payload,
            content=content,
            content_length=row["content_length"],
            truncated=content_cut or payload_cut or references_cut,
            redacted=bool(row["redacted"]),
            after_end=bool(row["after_end"]),
            timestamp=row["timestamp"],
        )


def _cut_references(references: list[str] | None, max_chars: int) -> tuple[list[str] | None, bool]:
    """The leading references whose total length fits max_chars (100 references of 1000 characters do not)."""
    if references is None:
        return None, False
    kept: list[str] = []
    used = 0
    for reference in references:
        used += len(reference) + 4
        if used > max_chars:
            return kept, True
        kept.append(reference)
    return kept, False


def _cut_escaped(text: str, max_chars: int) -> str:
    """`text` cut so that even JSON-escaped twice (a string inside the structured result, and again inside
    its text copy) it stays near max_chars: JSON full of quotes grows fourfold."""
    cut = text[:max_chars]
    while len(json.dumps(json.dumps(cut))) > 2 * max_chars:
        cut = cut[: len(cut) * 3 // 4]
    return cut


# Cut long content in SQL so a page of MB-sized rows never leaves the database whole.
LOG_COLUMNS = (
    "log_id, session_id, log_type, agent_type, agent_id, group_id, iteration, phase, confidence, refs,"
    " event_type, payload, substr(content, 1, :max_chars + 1) AS content, content_length, redacted, after_end,"
    " timestamp"
)


class GetLogsInput(Input):
    session_id: SessionId
    log_type: LogType | None = Field(None, description="Only this kind of log.")
    agent_type: AgentType | None = None
    group_id: GroupScope | None = None
    phase: Phase | None = Field(None, description="Only reasoning of this phase.")
    after_id: Annotated[int, Field(ge=0, description="Only logs with log_id greater than this.")] | None = None
    limit: Limit = DEFAULT_LIMIT
    cursor: Cursor | None = None
    max_chars: MaxChars = DEFAULT_MAX_CHARS


@operation("get-logs", title="Get logs", read_only=True, idempotent=True)
async def get_logs(store: Store, args: GetLogsInput) -> Page[LogEntry]:
    """Read a session's logs oldest first (ascending log_id), filtered and paged."""
    after = max(args.after_id or 0, cursor_position(args.cursor, "after", 0))
    where = ["session_id = :session_id", "log_id > :after"]
    params: dict[str, Any] = {"session_id": args.session_id, "after": after, "max_chars": args.max_chars}
    for column in ("log_type", "agent_type", "group_id", "phase"):
        value = getattr(args, column)
        if value is not None:
            where.append(f"{column} = :{column}")
            params[column] = value
    params["limit"] = args.limit + 1
    sql = f"SELECT {LOG_COLUMNS} FROM logs WHERE {' AND '.join(where)} ORDER BY log_id LIMIT :limit"
    async with store.read() as conn:
        await require_session(conn, args.session_id)
        async with conn.execute(sql, params) as cursor:
            rows = list(await cursor.fetchall())
    items, cut = fit_to_budget([LogEntry.from_row(r, args.max_chars) for r in rows[: args.limit]])
    more = cut or len(rows) > args.limit
    next_cursor = encode_cursor({"after": items[-1].log_id}) if more and items else None
    return Page[LogEntry](items=items, next_cursor=next_cursor, truncated=cut)


async def recent_logs(conn: Any, session_id: str, limit: int, max_chars: int) -> list[LogEntry]:
    """The newest `limit` logs of a session, newest first (for the dashboard)."""
    rows = await fetch_all(
        conn,
        f"SELECT {LOG_COLUMNS.replace(':max_chars', '?')} FROM logs WHERE session_id = ?"
        " ORDER BY log_id DESC LIMIT ?",
        (max_chars, session_id, limit),
    )
    return [LogEntry.from_row(r, max_chars) for r in rows]
