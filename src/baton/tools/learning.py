"""Learning across sessions, keyed by project: error patterns and strategies; reasoning-phase checks.

Error messages are normalised (paths, line numbers, quoted values, hex addresses stripped) and
hashed, so the same error seen in different files or sessions is one pattern. Occurrences,
success/failure counts and confidence change only in SQL. Confidence is the Laplace estimate
(successes + 1) / (successes + failures + 2). Patterns expire ttl_days after they were last seen
(default 90): expired ones are hidden, never deleted automatically; prune-error-patterns deletes them.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from baton.clock import format_utc, utc_now
from baton.errors import Conflict, NotFound
from baton.models import (
    DEFAULT_LIMIT,
    DEFAULT_MAX_CHARS,
    AgentType,
    Cursor,
    GroupScope,
    IdempotencyKey,
    Input,
    Limit,
    MaxChars,
    Output,
    Page,
    Project,
    SessionId,
    Text,
)
from baton.operations import cut_text, fit_to_budget, operation
from baton.redact import redact
from baton.store import Store, fetch_all, fetch_one
from baton.tools._common import require_session
from baton.tools._domain import next_page, page_offset, resolve_project
from baton.tools.logs import Phase

DEFAULT_TTL_DAYS = 90
TtlDays = Annotated[
    int, Field(ge=1, le=3650, description=f"Days after last seen until it expires (default {DEFAULT_TTL_DAYS}).")
]

# Linear in the message (tests/test_adversarial_text.py): `re` retries a failed match at every later
# position, so a quantifier followed by a character it cannot match is possessive (the same matches
# without backtracking), and a path starts only where a run of path characters starts: a path that
# fails there fails from every later character of the run too (20 KB of backslashes took 14 s, of
# letters 4 s). The one start inside a run is a drive letter (`abcC:\x`), which ends the run.
_QUOTED = re.compile(r"\"[^\"\n]*+\"|'[^'\n]*+'|`[^`\n]*+`")
_PATH = re.compile(r"(?:[A-Za-z]:|(?<![\w.@~\\/-]))(?:[\w.@~-]*+[\\/])+[\w.@~-]+")
_LINE = re.compile(r"(?i)\b(line|ln|row|col(?:umn)?)\s*+[:#]?\s*+\d+")
_COLON_NUMBERS = re.compile(r":\d++(?::\d++)?\b")
_HEX = re.compile(r"\b0x[0-9a-fA-F]++\b")
_SPACE = re.compile(r"\s+")


def normalise_error(message: str) -> str:
    """The error with what varies between occurrences removed: quoted values, paths, line numbers."""
    text = _QUOTED.sub("<value>", message)
    text = _PATH.sub("<path>", text)
    text = _LINE.sub(lambda m: f"{m.group(1).lower()} <n>", text)
    text = _COLON_NUMBERS.sub(":<n>", text)
    text = _HEX.sub("<hex>", text)
    return _SPACE.sub(" ", text).strip()


def error_signature(message: str) -> str:
    return hashlib.sha256(normalise_error(message).encode()).hexdigest()


class ProjectScoped(Input):
    project: Project | None = Field(None, description="The project; default: the session's project.")
    session_id: SessionId | None = Field(None, description="A session whose project to use (and to credit).")


class ErrorPattern(Output):
    pattern_id: int
    project: str
    signature: str
    normalized_message: str
    example_message: str
    error_type: str | None
    solution: str | None
    agent_type: str | None
    occurrences: int
    success_count: int
    failure_count: int
    confidence: float
    ttl_days: int | None
    expires_at: str | None
    expired: bool
    first_seen: str
    last_seen: str
    truncated: bool
    redacted: bool

    @classmethod
    def from_row(cls, row: sqlite3.Row, max_chars: int = DEFAULT_MAX_CHARS) -> ErrorPattern:
        example, cut1 = cut_text(row["example_message"], max_chars)
        solution, cut2 = cut_text(row["solution"], max_chars)
        normalized, cut3 = cut_text(row["normalized_message"], max_chars)
        expires_at = None
        if row["ttl_days"] is not None:
            try:
                last = datetime.fromisoformat(row["last_seen"].replace("Z", "+00:00"))
                expires_at = format_utc(last + timedelta(days=row["ttl_days"]))
            except OverflowError:  # last seen within ttl_days of 9999-12-31 (an import can bring that)
                expires_at = "9999-12-31T23:59:59.999Z"
            except ValueError:  # not a time: the reads' julianday() is NULL for it too, so it never expires
                expires_at = None
        return cls(
            **{k: row[k] for k in ("pattern_id", "project", "signature", "error_type",
                                   "agent_type", "occurrences", "success_count", "failure_count", "confidence",
                                   "ttl_days", "first_seen", "last_seen")},
            normalized_message=normalized or "", example_message=example or "", solution=solution,
            expires_at=expires_at, expired=expires_at is not None and expires_at <= utc_now(),
            truncated=cut1 or cut2 or cut3,
            redacted=bool(row["redacted"]),
        )


class SaveErrorPatternInput(ProjectScoped):
    error_message: Annotated[Text, Field(max_length=20_000, description="The error as seen (secrets are redacted).")]
    solution: Annotated[str, Field(max_length=20_000)] | None = Field(None, description="What fixed it.")
    error_type: Annotated[str, Field(max_length=200)] | None = Field(None, description="e.g. ImportError, timeout.")
    agent_type: AgentType | None = None
    ttl_days: TtlDays | None = None
    idempotency_key: IdempotencyKey | None = None


class ErrorPatternSaved(ErrorPattern):
    created: bool = Field(description="True for a new pattern; false when an occurrence was added to one.")
    idempotent: bool = False


@operation("save-error-pattern", title="Save error pattern", profile="full")
async def save_error_pattern(store: Store, args: SaveErrorPatternInput) -> ErrorPatternSaved:
    """Record an error (and its fix) for the project; a repeat of the same normalised error adds an occurrence.

    Paths, line numbers and quoted values are stripped before hashing, so the same error in
    another file or session counts as the same pattern. Counts are updated atomically."""
    message, redacted_message = redact(args.error_message)
    solution, redacted_solution = redact(args.solution) if args.solution is not None else (None, False)
    normalised = normalise_error(message)
    async with store.write() as conn:
        project = await resolve_project(conn, args.project, args.session_id)

        async def write() -> dict[str, Any]:
            now = utc_now()
            row = await fetch_one(
                conn,
                "INSERT INTO error_patterns (project, signature, normalized_message, example_message, error_type,"
                " solution, agent_type, ttl_days, redacted, first_seen, last_seen, last_session_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, coalesce(?, ?), ?, ?, ?, ?)"
                " ON CONFLICT (project, signature) DO UPDATE SET occurrences = occurrences + 1,"
                " last_seen = excluded.last_seen, solution = coalesce(excluded.solution, solution),"
                " error_type = coalesce(excluded.error_type, error_type),"
                " agent_type = coalesce(excluded.agent_type, agent_type), ttl_days = coalesce(?, ttl_days),"
                " redacted = max(redacted, excluded.redacted),"
                " last_session_id = coalesce(excluded.last_session_id, last_session_id)"
                " RETURNING pattern_id, occurrences",
                (project, hashlib.sha256(normalised.encode()).hexdigest(), normalised, message, args.error_type,
                 solution, args.agent_type, args.ttl_days, DEFAULT_TTL_DAYS, int(redacted_message or redacted_solution),
                 now, now, args.session_id, args.ttl_days),
            )
            assert row is not None
            return {"pattern_id": row["pattern_id"], "created": row["occurrences"] == 1}

        result, replayed = await store.idempotent(
            conn, session_id=args.session_id or f"project:{project}", operation="save-error-pattern",
            key=args.idempotency_key, payload={**args.model_dump(exclude={"idempotency_key"}), "project": project},
            write=write,
        )
        row = await _require_pattern(conn, result["pattern_id"])
    return ErrorPatternSaved(**ErrorPattern.from_row(row).model_dump(), created=result["created"],
                             idempotent=replayed)


async def _require_pattern(conn: Any, pattern_id: int) -> sqlite3.Row:
    row = await fetch_one(conn, "SELECT * FROM error_patterns WHERE pattern_id = ?", (pattern_id,))
    if row is None:
        raise NotFound(f"error pattern {pattern_id} does not exist; see get-error-patterns")
    return row


class GetErrorPatternsInput(ProjectScoped):
    error_message: Annotated[str, Field(min_length=1, max_length=20_000)] | None = Field(
        None, description="Find the pattern this error normalises to."
    )
    contains: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        None, description="Only patterns whose normalised message contains this text."
    )
    agent_type: AgentType | None = None
    min_confidence: Annotated[float, Field(ge=0, le=1)] | None = Field(None, description="Only patterns this trusted.")
    include_expired: bool = Field(False, description="Also patterns past their TTL.")
    limit: Limit = DEFAULT_LIMIT
    cursor: Cursor | None = None
    max_chars: MaxChars = DEFAULT_MAX_CHARS


@operation("get-error-patterns", title="Get error patterns", profile="full", read_only=True, idempotent=True)
async def get_error_patterns(store: Store, args: GetErrorPatternsInput) -> Page[ErrorPattern]:
    """Known errors of the project and their fixes, most trusted first (confidence, then occurrences).

    Give error_message to look up the pattern one error matches. Expired patterns are hidden
    unless include_expired."""
    offset = page_offset(args.cursor)
    where = ["project = ?"]
    params: list[Any] = []
    if args.error_message is not None:
        where.append("signature = ?")
        params.append(error_signature(redact(args.error_message)[0]))
    if args.contains is not None:
        where.append("instr(lower(normalized_message), lower(?)) > 0")
        params.append(args.contains)
    if args.agent_type is not None:
        where.append("agent_type = ?")
        params.append(args.agent_type)
    if args.min_confidence is not None:
        where.append("confidence >= ?")
        params.append(args.min_confidence)
    if not args.include_expired:
        where.append(f"NOT {_EXPIRED}")
        params.append(utc_now())
    async with store.read() as conn:
        project = await resolve_project(conn, args.project, args.session_id)
        rows = await fetch_all(
            conn,
            f"SELECT * FROM error_patterns WHERE {' AND '.join(where)}"
            " ORDER BY confidence DESC, occurrences DESC, pattern_id DESC LIMIT ? OFFSET ?",
            (project, *params, args.limit + 1, offset),
        )
    items, over = fit_to_budget([ErrorPattern.from_row(r, args.max_chars) for r in rows[: args.limit]])
    more = over or len(rows) > args.limit
    return Page[ErrorPattern](items=items, next_cursor=next_page(offset, len(items), more), truncated=over)


_EXPIRED = "(ttl_days IS NOT NULL AND julianday(?) - julianday(last_seen) >= ttl_days)"


class UpdateErrorConfidenceInput(ProjectScoped):
    pattern_id: Annotated[int, Field(ge=1, description="From save-error-pattern or get-error-patterns.")] | None = None
    error_message: Annotated[str, Field(min_length=1, max_length=20_000)] | None = Field(
        None, description="Instead of pattern_id: the error, matched by its normalised form in the project."
    )
    outcome: Literal["success", "failure"] = Field(description="Did applying the pattern's solution work?")
    idempotency_key: IdempotencyKey | None = None

    @model_validator(mode="after")
    def _one_key(self) -> UpdateErrorConfidenceInput:
        if (self.pattern_id is None) == (self.error_message is None):
            raise ValueError("give exactly one of pattern_id or error_message")
        return self


class ErrorPatternUpdated(ErrorPattern):
    idempotent: bool = Field(False, description="True when this was a retry: the outcome was counted once.")


@operation("update-error-confidence", title="Update error-pattern confidence", profile="full")
async def update_error_confidence(store: Store, args: UpdateErrorConfidenceInput) -> ErrorPatternUpdated:
    """Report whether a pattern's solution worked; success/failure counts and confidence change atomically.

    Confidence becomes (successes + 1) / (successes + failures + 2). Pass an idempotency_key so a
    retried report is counted once."""
    column = "success_count" if args.outcome == "success" else "failure_count"
    # SET expressions see the old row: the new count is old + 1 on one side only.
    confidence = ("(success_count + 2.0) / (success_count + failure_count + 3.0)" if args.outcome == "success"
                  else "(success_count + 1.0) / (success_count + failure_count + 3.0)")
    key: tuple[Any, ...]
    async with store.write() as conn:
        project = None
        if args.project is not None or args.session_id is not None or args.pattern_id is None:
            project = await resolve_project(conn, args.project, args.session_id)
        if args.pattern_id is not None:
            where, key = "pattern_id = ?", (args.pattern_id,)
            if project is not None:
                where, key = "pattern_id = ? AND project = ?", (args.pattern_id, project)
        else:
            signature = error_signature(redact(args.error_message or "")[0])
            where, key = "project = ? AND signature = ?", (project, signature)

        async def write() -> dict[str, Any]:
            row = await fetch_one(
                conn,
                f"UPDATE error_patterns SET {column} = {column} + 1, confidence = {confidence} WHERE {where}"
                " RETURNING pattern_id",
                key,
            )
            if row is None:
                raise NotFound(f"no error pattern matches {key[0]!r} in that project; see get-error-patterns")
            return {"pattern_id": row["pattern_id"]}

        scope = args.session_id or (f"project:{project}" if project else f"pattern:{args.pattern_id}")
        result, replayed = await store.idempotent(
            conn, session_id=scope, operation="update-error-confidence", key=args.idempotency_key,
            payload=args.model_dump(exclude={"idempotency_key"}), write=write,
        )
        row = await _require_pattern(conn, result["pattern_id"])
    return ErrorPatternUpdated(**ErrorPattern.from_row(row).model_dump(), idempotent=replayed)


class PruneErrorPatternsInput(Input):
    project: Project | None = Field(None, description="Only this project (default: every project).")
    confirm: bool = Field(False, description="Really delete; without it, only report what would be deleted.")


class PruneResult(Output):
    expired: int = Field(description="Expired patterns found.")
    deleted: int
    dry_run: bool
    pattern_ids: list[int] = Field(description="The expired patterns (up to 500).")


@operation("prune-error-patterns", title="Prune expired error patterns", profile="full", destructive=True)
async def prune_error_patterns(store: Store, args: PruneErrorPatternsInput) -> PruneResult:
    """Delete error patterns whose TTL has passed (only with confirm=true; otherwise a dry run).

    Nothing is ever deleted automatically; expired patterns are only hidden from reads."""
    where = _EXPIRED
    params: list[Any] = [utc_now()]
    if args.project is not None:
        where += " AND project = ?"
        params.append(args.project)
    async with store.write() as conn:
        ids = [r[0] for r in await fetch_all(
            conn, f"SELECT pattern_id FROM error_patterns WHERE {where} ORDER BY pattern_id", tuple(params))]
        deleted = 0
        if args.confirm and ids:
            cursor = await conn.execute(f"DELETE FROM error_patterns WHERE {where}", tuple(params))
            deleted = cursor.rowcount
    return PruneResult(expired=len(ids), deleted=deleted, dry_run=not args.confirm, pattern_ids=ids[:500])


class Strategy(Output):
    strategy_id: int
    project: str
    topic: str
    insight: str
    agent_type: str | None
    helpfulness: int = Field(description="How many times it was saved as helpful (starts at 1).")
    truncated: bool
    redacted: bool
    created_at: str
    updated_at: str

    @classmethod
    def from_row(cls, row: sqlite3.Row, max_chars: int = DEFAULT_MAX_CHARS) -> Strategy:
        insight, cut = cut_text(row["insight"], max_chars)
        return cls(
            **{k: row[k] for k in ("strategy_id", "project", "topic", "agent_type", "helpfulness", "created_at",
                                   "updated_at")},
            insight=insight or "", truncated=cut, redacted=bool(row["redacted"]),
        )


class SaveStrategyInput(ProjectScoped):
    topic: Annotated[Text, Field(max_length=200, description="What the strategy is about; unique per project.")]
    insight: Annotated[Text, Field(max_length=20_000, description="What worked (secrets are redacted).")]
    agent_type: AgentType | None = None
    idempotency_key: IdempotencyKey | None = None


class StrategySaved(Strategy):
    created: bool = Field(description="False when the same strategy existed: its helpfulness went up by one.")
    idempotent: bool = False


@operation("save-strategy", title="Save strategy", profile="full")
async def save_strategy(store: Store, args: SaveStrategyInput) -> StrategySaved:
    """Record a strategy that worked for the project; saving the same topic and insight again adds 1 to helpfulness.

    The same topic with a different insight is a conflict (pick a more specific topic). Use an
    idempotency_key so a retried call does not count twice."""
    insight, was_redacted = redact(args.insight)
    async with store.write() as conn:
        project = await resolve_project(conn, args.project, args.session_id)

        async def write() -> dict[str, Any]:
            now = utc_now()
            row = await fetch_one(
                conn,
                "INSERT INTO strategies (project, topic, insight, agent_type, redacted, created_at, updated_at,"
                " last_session_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (project, topic) DO UPDATE SET helpfulness = helpfulness + 1,"
                " updated_at = excluded.updated_at,"
                " last_session_id = coalesce(excluded.last_session_id, last_session_id)"
                " WHERE strategies.insight = excluded.insight RETURNING strategy_id, helpfulness = 1 AS new",
                (project, args.topic, insight, args.agent_type, int(was_redacted), now, now, args.session_id),
            )
            if row is None:
                raise Conflict(
                    f"project {project!r} already has a strategy on topic {args.topic!r} with a different insight; "
                    "use a more specific topic"
                )
            return {"strategy_id": row["strategy_id"], "created": bool(row["new"])}

        result, replayed = await store.idempotent(
            conn, session_id=args.session_id or f"project:{project}", operation="save-strategy",
            key=args.idempotency_key, payload={**args.model_dump(exclude={"idempotency_key"}), "project": project},
            write=write,
        )
        row = await fetch_one(conn, "SELECT * FROM strategies WHERE strategy_id = ?", (result["strategy_id"],))
    assert row is not None
    return StrategySaved(**Strategy.from_row(row).model_dump(), created=result["created"], idempotent=replayed)


class GetStrategiesInput(ProjectScoped):
    contains: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        None, description="Only strategies whose topic or insight contains this text."
    )
    agent_type: AgentType | None = None
    limit: Limit = DEFAULT_LIMIT
    cursor: Cursor | None = None
    max_chars: MaxChars = DEFAULT_MAX_CHARS


@operation("get-strategies", title="Get strategies", profile="full", read_only=True, idempotent=True)
async def get_strategies(store: Store, args: GetStrategiesInput) -> Page[Strategy]:
    """The project's strategies, most helpful first."""
    offset = page_offset(args.cursor)
    where = ["project = ?"]
    params: list[Any] = []
    if args.contains is not None:
        where.append("(instr(lower(topic), lower(?)) > 0 OR instr(lower(insight), lower(?)) > 0)")
        params += [args.contains, args.contains]
    if args.agent_type is not None:
        where.append("agent_type = ?")
        params.append(args.agent_type)
    async with store.read() as conn:
        project = await resolve_project(conn, args.project, args.session_id)
        rows = await fetch_all(
            conn,
            f"SELECT * FROM strategies WHERE {' AND '.join(where)}"
            " ORDER BY helpfulness DESC, strategy_id DESC LIMIT ? OFFSET ?",
            (project, *params, args.limit + 1, offset),
        )
    items, over = fit_to_budget([Strategy.from_row(r, args.max_chars) for r in rows[: args.limit]])
    more = over or len(rows) > args.limit
    return Page[Strategy](items=items, next_cursor=next_page(offset, len(items), more), truncated=over)


MANDATORY_PHASES: tuple[Phase, ...] = ("understanding", "completion")


class CheckMandatoryPhasesInput(Input):
    session_id: SessionId
    agent_type: AgentType
    group_id: GroupScope = "global"
    required_phases: Annotated[list[Phase], Field(min_length=1, max_length=7)] | None = Field(
        None, description="Phases that must be documented (default: understanding, completion)."
    )


class MandatoryPhases(Output):
    complete: bool = Field(description="True when every required phase has at least one reasoning entry.")
    required: list[str]
    missing: list[str]
    documented: dict[str, int] = Field(description="Reasoning entries per phase for this agent and group.")


@operation("check-mandatory-phases", title="Check mandatory reasoning phases", profile="full", read_only=True,
           idempotent=True)
async def check_mandatory_phases(store: Store, args: CheckMandatoryPhasesInput) -> MandatoryPhases:
    """Which reasoning phases an agent documented (save-reasoning) for a group, and which required ones are missing."""
    required = list(dict.fromkeys(args.required_phases or MANDATORY_PHASES))
    async with store.read() as conn:
        await require_session(conn, args.session_id)
        rows = await fetch_all(
            conn,
            "SELECT phase, count(*) AS n FROM logs WHERE session_id = ? AND log_type = 'reasoning'"
            " AND agent_type = ? AND group_id = ? GROUP BY phase ORDER BY phase",
            (args.session_id, args.agent_type, args.group_id),
        )
    documented = {row["phase"]: row["n"] for row in rows}
    missing = [phase for phase in required if phase not in documented]
    return MandatoryPhases(complete=not missing, required=required, missing=missing, documented=documented)
