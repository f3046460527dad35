"""Full-text search across sessions: interactions, reasoning, success criteria, context package summaries.

The FTS5 index `search_index` is kept in sync by triggers on the source tables (migration 0002),
so a row is searchable in the same transaction that wrote it; rows older than the index were
backfilled by the migration.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field

from baton.errors import InvalidInput
from baton.models import DEFAULT_LIMIT, AgentType, Cursor, Input, Limit, Output, Page, Project, SessionId
from baton.operations import fit_to_budget, operation
from baton.store import Store, fetch_all
from baton.tools._domain import next_page, page_offset

Kind = Literal["interaction", "reasoning", "criterion", "context_package"]
# A snippet is a few words, but one "word" can be a megabyte of base64: cap it in characters too.
SNIPPET_CHARS = 1000
_WORD = re.compile(r"[\w]+", re.UNICODE)
# FTS5's snippet() costs the square of the matches in the row (40,000 repeats of a word in one 200 KB
# log took 10 s, and cannot be interrupted). Rows longer than this get a snippet built here instead,
# from the start of the text: linear, and a near match (prefix of the stemmed word) is good enough.
SQL_SNIPPET_MAX_CHARS = 8000
HEAD_CHARS = 100_000


def fts_query(text: str) -> str:
    """Plain words as an FTS5 query: every word must occur (prefix match on the last one).

    Punctuation is dropped, so user text never becomes FTS5 syntax (quotes, AND/OR/NEAR, `-`, `:`)."""
    words = list(dict.fromkeys(_WORD.findall(text)))  # a repeated word multiplies snippet()'s cost, adds nothing
    if not words:
        raise InvalidInput("query has no words to search for")
    quoted = [f'"{w}"' for w in words[:32]]
    quoted[-1] += "*"
    return " ".join(quoted)


class SearchInput(Input):
    query: Annotated[str, Field(min_length=1, max_length=500, description="Words to find (all must occur).")]
    project: Project | None = None
    session_id: SessionId | None = None
    agent_type: AgentType | None = None
    kinds: Annotated[list[Kind], Field(min_length=1, max_length=4)] | None = Field(
        None, description="Only these sources (default: all)."
    )
    limit: Limit = DEFAULT_LIMIT
    cursor: Cursor | None = None
    snippet_words: Annotated[int, Field(ge=4, le=64)] = Field(24, description="Words of context in each snippet.")


class SearchHit(Output):
    kind: Kind
    id: int = Field(description="log_id, criterion_id or package_id, by kind.")
    session_id: str
    project: str | None
    agent_type: str | None
    group_id: str | None
    snippet: str = Field(description="The matching passage, matches wrapped in [ ].")
    score: float = Field(description="BM25 relevance; lower is better (results are sorted by it).")


@operation("search", title="Search", profile="full", read_only=True, idempotent=True)
async def search(store: Store, args: SearchInput) -> Page[SearchHit]:
    """Full-text search over interactions, reasoning, success criteria and context package summaries, across sessions.

    Every word must occur (stemmed; the last word also matches as a prefix). Filter by project,
    session_id, agent_type and kinds. Best matches first, each with a short snippet."""
    offset = page_offset(args.cursor)
    where = ["search_index MATCH :query"]
    params: dict[str, Any] = {"query": fts_query(args.query), "limit": args.limit + 1, "offset": offset}
    if args.project is not None:
        where.append("s.project = :project")
        params["project"] = args.project
    if args.session_id is not None:
        where.append("i.session_id = :session_id")
        params["session_id"] = args.session_id
    if args.agent_type is not None:
        where.append("i.agent_type = :agent_type")
        params["agent_type"] = args.agent_type
    if args.kinds is not None:
        names = {f"kind{n}": kind for n, kind in enumerate(args.kinds)}
        where.append(f"i.kind IN ({', '.join(':' + n for n in names)})")
        params.update(names)
    # Two steps: rank every match cheaply, then build snippets for the one page only (a snippet
    # per match of a common word would cost seconds on a large index).
    ranked_sql = (
        "SELECT i.rowid, i.rank FROM search_index i JOIN sessions s ON s.session_id = i.session_id"
        f" WHERE {' AND '.join(where)} ORDER BY i.rank, i.rowid DESC LIMIT :limit OFFSET :offset"
    )
    async with store.read() as conn:
        async with conn.execute(ranked_sql, params) as cursor:
            ranked = [(row[0], row[1]) for row in await cursor.fetchall()]
        page = ranked[: args.limit]
        details: dict[int, Any] = {}
        if page:
            marks = ", ".join("?" for _ in page)
            rows = await fetch_all(
                conn,
                "SELECT i.rowid, i.kind, i.source_id, i.session_id, s.project, i.agent_type, i.group_id,"
                f" CASE WHEN length(i.content) <= {SQL_SNIPPET_MAX_CHARS}"
                "  THEN snippet(search_index, 0, '[', ']', '…', ?) END AS snippet,"
                f" CASE WHEN length(i.content) > {SQL_SNIPPET_MAX_CHARS} THEN substr(i.content, 1, {HEAD_CHARS}) END"
                " AS head"
                " FROM search_index i JOIN sessions s ON s.session_id = i.session_id"
                f" WHERE search_index MATCH ? AND i.rowid IN ({marks})",
                (args.snippet_words, params["query"], *(rowid for rowid, _ in page)),
            )
            details = {row["rowid"]: row for row in rows}
    hits = [
        SearchHit(kind=r["kind"], id=r["source_id"], session_id=r["session_id"], project=r["project"],
                  agent_type=r["agent_type"], group_id=r["group_id"],
                  snippet=(r["snippet"] if r["head"] is None else
                           text_snippet(r["head"], args.query, args.snippet_words))[:SNIPPET_CHARS],
                  score=score)
        for rowid, score in page
        if (r := details.get(rowid)) is not None
    ]
    more = len(ranked) > args.limit
    items, over = fit_to_budget(hits)
    more = over or more
    return Page[SearchHit](items=items, next_cursor=next_page(offset, len(items), more), truncated=over)


def text_snippet(text: str, query: str, words: int) -> str:
    """A snippet like FTS5's (`words` words around the first match, matches in [ ]) for a long row, in one
    pass. A word matches when it starts with a query word's first letters (a stand-in for the stemmer)."""
    stems = tuple(w.lower()[: max(3, len(w) - 2)] for w in dict.fromkeys(_WORD.findall(query)))
    tokens = list(_WORD.finditer(text))
    first = next((n for n, m in enumerate(tokens) if m.group().lower().startswith(stems)), 0)
    start = max(0, first - words // 4)
    window = tokens[start:start + words]
    if not window:
        return ""
    parts = []
    for n, match in enumerate(window):
        if n:
            parts.append(text[window[n - 1].end():match.start()])
        word = match.group()
        parts.append(f"[{word}]" if word.lower().startswith(stems) else word)
    lead = "…" if start > 0 else ""
    tail = "…" if start + words < len(tokens) else ""
    return lead + "".join(parts) + tail
