"""Token usage per agent, group and model."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import Field

from baton.clock import utc_now
from baton.models import AgentId, AgentType, GroupScope, IdempotencyKey, Input, Output, SessionId
from baton.operations import RESPONSE_BUDGET_CHARS, operation
from baton.store import Store, fetch_all, fetch_one
from baton.tools._common import TERMINAL_STATUSES, require_session

TokenCount = Annotated[int, Field(ge=0, le=10**12)]


class LogTokensInput(Input):
    session_id: SessionId
    agent_type: AgentType
    input_tokens: Annotated[TokenCount, Field(description="Prompt tokens, cache excluded.")]
    output_tokens: TokenCount = Field(0, description="Generated tokens.")
    cache_read_tokens: TokenCount = Field(0, description="Prompt tokens read from cache.")
    cache_write_tokens: TokenCount = Field(0, description="Prompt tokens written to cache.")
    model: Annotated[str, Field(min_length=1, max_length=100, description="e.g. sonnet, opus.")] | None = None
    agent_id: AgentId | None = None
    group_id: GroupScope | None = None
    idempotency_key: IdempotencyKey | None = None


class TokensLogged(Output):
    usage_id: int
    idempotent: bool = False


@operation("log-tokens", title="Log token usage")
async def log_tokens(store: Store, args: LogTokensInput) -> TokensLogged:
    """Record the tokens one agent call used (input, output, cache read, cache write)."""
    row = args.model_dump(exclude={"idempotency_key"})
    async with store.write() as conn:
        session = await require_session(conn, args.session_id)

        async def write() -> dict[str, Any]:
            values = {**row, "after_end": int(session["status"] in TERMINAL_STATUSES), "timestamp": utc_now()}
            cursor = await conn.execute(
                f"INSERT INTO token_usage ({', '.join(values)}) VALUES ({', '.join('?' for _ in values)})",
                tuple(values.values()),
            )
            return {"usage_id": cursor.lastrowid}

        result, replayed = await store.idempotent(
            conn, session_id=args.session_id, operation="log-tokens", key=args.idempotency_key, payload=row,
            write=write,
        )
    return TokensLogged(**result, idempotent=replayed)


class TokenSummaryInput(Input):
    session_id: SessionId
    by: Literal["agent_type", "agent_id", "group_id", "model"] = Field("agent_type", description="Subtotals per this.")


class TokenSummary(Output):
    total: int = Field(description="Input + output + cache read + cache write tokens.")
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    by: dict[str, int] = Field(description="Total per key, largest first; rows without the key are under \"unknown\".")
    truncated: bool = Field(False, description="True when only the largest keys fit in one response (the totals "
                                               "above still cover every row).")


TOTAL = "input_tokens + output_tokens + cache_read_tokens + cache_write_tokens"


async def token_summary_of(conn: Any, session_id: str, by: str, budget: int = RESPONSE_BUDGET_CHARS) -> TokenSummary:
    """Totals over every row; `by` keeps the largest keys that fit in `budget` (thousands of agent ids do not)."""
    sums = await fetch_one(
        conn,
        "SELECT coalesce(sum(input_tokens), 0) AS i, coalesce(sum(output_tokens), 0) AS o,"
        " coalesce(sum(cache_read_tokens), 0) AS cr, coalesce(sum(cache_write_tokens), 0) AS cw"
        " FROM token_usage WHERE session_id = ?",
        (session_id,),
    )
    assert sums is not None
    groups = await fetch_all(
        conn,
        f"SELECT coalesce({by}, 'unknown') AS k, sum({TOTAL}) AS t FROM token_usage WHERE session_id = ?"
        " GROUP BY k ORDER BY t DESC",
        (session_id,),
    )
    kept: dict[str, int] = {}
    used = 0
    for row in groups:
        # As escaped in the text copy: the key twice quoted, the number, the separators.
        used += len(json.dumps(json.dumps(row["k"]))) + len(str(row["t"])) + 4
        if used > budget:
            break
        kept[row["k"]] = row["t"]
    return TokenSummary(
        total=sums["i"] + sums["o"] + sums["cr"] + sums["cw"],
        input_tokens=sums["i"],
        output_tokens=sums["o"],
        cache_read_tokens=sums["cr"],
        cache_write_tokens=sums["cw"],
        by=kept,
        truncated=len(kept) < len(groups),
    )


@operation("token-summary", title="Token summary", read_only=True, idempotent=True)
async def token_summary(store: Store, args: TokenSummaryInput) -> TokenSummary:
    """Sum a session's token usage, in total and per agent type, agent, group or model."""
    async with store.read() as conn:
        await require_session(conn, args.session_id)
        return await token_summary_of(conn, args.session_id, args.by)
