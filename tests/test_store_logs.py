"""Interactions, reasoning and events: writes, idempotency, redaction, and get-logs filters and paging."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import anyio
import pytest

from baton.errors import Busy, Conflict, InvalidInput, NotFound
from baton.store import Store
from tests.core_helpers import (  # noqa: F401 (the *_fixture names: stores start from a migrated copy)
    PLACEHOLDERS,
    TIMESTAMP,
    copied_store_fixture,
    dump_tables,
    migrated_template_fixture,
    new_session,
    unchanged,
)
from tests.helpers import call


async def _all_logs(store: Store, session_id: str, **filters: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await call(store, "get-logs", session_id=session_id, limit=500, cursor=cursor, **filters)
        rows += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return rows


async def test_log_interaction_returns_what_was_stored(store: Store) -> None:
    """The write result names the new row, and get-logs returns that row with every field."""
    await new_session(store, "s")
    written = await call(store, "log-interaction", session_id="s", agent_type="developer", content="hello world",
                         agent_id="developer_1", group_id="A", iteration=2)
    assert written == {"log_id": written["log_id"], "session_id": "s", "timestamp": written["timestamp"],
                       "content_length": 11, "redacted": False, "idempotent": False}
    assert TIMESTAMP.match(written["timestamp"])
    (entry,) = await _all_logs(store, "s")
    assert entry == {
        "log_id": written["log_id"], "session_id": "s", "log_type": "interaction", "agent_type": "developer",
        "agent_id": "developer_1", "group_id": "A", "iteration": 2, "phase": None, "confidence": None,
        "references": None, "event_type": None, "payload": None, "content": "hello world", "content_length": 11,
        "truncated": False, "redacted": False, "after_end": False, "timestamp": written["timestamp"],
    }


@pytest.mark.parametrize(("given", "stored"), [("pm", "project_manager"), ("PM", "project_manager"),
                                                ("Tech-Lead", "tech_lead"), ("qa_expert", "qa_expert")])
async def test_agent_types_are_normalised(store: Store, given: str, stored: str) -> None:
    """`pm` is stored as project_manager; case and hyphens are normalised to lower snake case."""
    await new_session(store, "s")
    await call(store, "log-interaction", session_id="s", agent_type=given, content="x")
    (entry,) = await _all_logs(store, "s")
    assert entry["agent_type"] == stored
    assert len(await _all_logs(store, "s", agent_type=given)) == 1


async def test_log_to_unknown_session_is_not_found(store: Store, db_path: Path) -> None:
    """Every log write to a session that does not exist is not_found and writes nothing."""
    with unchanged(db_path):
        with pytest.raises(NotFound):
            await call(store, "log-interaction", session_id="ghost", agent_type="developer", content="x")
        with pytest.raises(NotFound):
            await call(store, "save-reasoning", session_id="ghost", agent_type="developer", phase="approach",
                       content="x")
        with pytest.raises(NotFound):
            await call(store, "save-event", session_id="ghost", event_type="merge", payload={})
        with pytest.raises(NotFound):
            await call(store, "get-logs", session_id="ghost")


@pytest.mark.parametrize("arguments", [
    {"agent_type": "developer", "content": ""},
    {"agent_type": "developer", "content": " \n "},
    {"agent_type": "", "content": "x"},
    {"agent_type": "developer", "content": "x", "iteration": -1},
    {"agent_type": "developer", "content": "x", "group_id": "bad group"},
    {"agent_type": "developer", "content": "x", "idempotency_key": ""},
    {"agent_type": "developer", "content": 42},
    {"agent_type": "developer", "content": "x", "colour": "blue"},
    {"content": "x"},
])
async def test_bad_log_interaction_is_invalid_and_writes_nothing(
    store: Store, db_path: Path, arguments: dict[str, Any]
) -> None:
    """Blank content, bad agent types, negative iterations, bad ids, wrong types: invalid, nothing written."""
    await new_session(store, "s")
    with unchanged(db_path), pytest.raises(InvalidInput):
        await call(store, "log-interaction", session_id="s", **arguments)


@pytest.mark.parametrize("placeholder", PLACEHOLDERS)
async def test_placeholders_are_rejected_in_log_ids(store: Store, db_path: Path, placeholder: str) -> None:
    """Template placeholders as session_id, group_id, agent_type or agent_id are rejected as such."""
    await new_session(store, "s")
    with unchanged(db_path):
        for field in ("session_id", "group_id", "agent_type", "agent_id"):
            arguments = {"session_id": "s", "agent_type": "developer", "content": "x", field: placeholder}
            with pytest.raises(InvalidInput, match="placeholder"):
                await call(store, "log-interaction", **arguments)


async def test_same_idempotency_key_and_payload_returns_first_result_and_writes_nothing(
    store: Store, db_path: Path
) -> None:
    """A retried log-interaction returns the first result with idempotent=true and adds no row."""
    await new_session(store, "s")
    arguments = {"session_id": "s", "agent_type": "developer", "content": "did it", "idempotency_key": "k1"}
    first = await call(store, "log-interaction", **arguments)
    with unchanged(db_path):
        again = await call(store, "log-interaction", **arguments)
    assert again == {**first, "idempotent": True}
    assert len(await _all_logs(store, "s")) == 1


async def test_same_idempotency_key_with_different_payload_is_a_conflict(store: Store, db_path: Path) -> None:
    """Reusing a key for a different write is a conflict and writes nothing."""
    await new_session(store, "s")
    await call(store, "log-interaction", session_id="s", agent_type="developer", content="a", idempotency_key="k")
    with unchanged(db_path), pytest.raises(Conflict, match="idempotency_key 'k'"):
        await call(store, "log-interaction", session_id="s", agent_type="developer", content="b",
                   idempotency_key="k")


async def test_idempotency_keys_are_scoped_to_session_and_operation(store: Store) -> None:
    """The same key in another session or another operation is a new write."""
    await new_session(store, "s")
    await new_session(store, "t")
    a = await call(store, "log-interaction", session_id="s", agent_type="developer", content="x", idempotency_key="k")
    b = await call(store, "log-interaction", session_id="t", agent_type="developer", content="x", idempotency_key="k")
    c = await call(store, "save-reasoning", session_id="s", agent_type="developer", phase="risks", content="x",
                   idempotency_key="k")
    assert not (a["idempotent"] or b["idempotent"] or c["idempotent"])
    assert len({a["log_id"], b["log_id"], c["log_id"]}) == 3


async def test_reasoning_and_event_writes_are_idempotent_too(store: Store, db_path: Path) -> None:
    """save-reasoning and save-event replay a repeated key and refuse a changed payload."""
    await new_session(store, "s")
    reasoning = {"session_id": "s", "agent_type": "tech_lead", "phase": "decisions", "content": "use SQLite",
                 "references": ["a.py"], "idempotency_key": "r"}
    first = await call(store, "save-reasoning", **reasoning)
    event = {"session_id": "s", "event_type": "merge.done", "payload": {"ok": True}, "idempotency_key": "e"}
    first_event = await call(store, "save-event", **event)
    with unchanged(db_path):
        assert await call(store, "save-reasoning", **reasoning) == {**first, "idempotent": True}
        assert await call(store, "save-event", **event) == {**first_event, "idempotent": True}
        with pytest.raises(Conflict):
            await call(store, "save-reasoning", **{**reasoning, "references": ["b.py"]})
        with pytest.raises(Conflict):
            await call(store, "save-event", **{**event, "payload": {"ok": False}})


SECRETS = [
    ("openai key", "use sk-proj-abcdefghijklmnop1234567890 here", "sk-proj-abcdefghijklmnop1234567890"),
    ("anthropic key", "key sk-ant-api03-abcdefghijklmnopqrstuvwx", "sk-ant-api03-abcdefghijklmnopqrstuvwx"),
    ("github token", "push with ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
    ("aws key id", "AWS AKIAIOSFODNN7EXAMPLE set", "AKIAIOSFODNN7EXAMPLE"),
    ("password pair", "login with password=hunter2hunter2 ok", "hunter2hunter2"),
    ("api_key json", '{"api_key": "abcd1234efgh5678"}', "abcd1234efgh5678"),
    ("token pair", "TOKEN: zyxwvutsrq987654", "zyxwvutsrq987654"),
    ("bearer header", "curl -H 'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9abcdefgh'", "eyJhbGciOiJIUzI1NiJ9abcdefgh"),
    ("bare bearer", "send bearer abcdefghijklmnop0123456789 please", "abcdefghijklmnop0123456789"),
    ("private key", "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA75\n-----END RSA PRIVATE KEY-----",
     "MIIEpAIBAAKCAQEA75"),
    ("url credentials", "db at postgres://admin:s3cr3tpass@db.local/x", "s3cr3tpass"),
    ("env password", "export DB_PASSWORD=hunter2hunter2", "hunter2hunter2"),
    ("env aws secret", "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY",
     "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY"),
    ("env api key", "STRIPE_API_KEY: rk_live_abcdef123456", "rk_live_abcdef123456"),
    ("env token", "SLACK_BOT_TOKEN='xyzzy12345plugh'", "xyzzy12345plugh"),
]


@pytest.mark.parametrize(("kind", "content", "secret"), SECRETS, ids=[s[0] for s in SECRETS])
async def test_secrets_are_redacted_before_storage(store: Store, db_path: Path, kind: str, content: str,
                                                   secret: str) -> None:
    """API keys, tokens, passwords, private keys and bearer headers never reach the database."""
    await new_session(store, "s")
    written = await call(store, "log-interaction", session_id="s", agent_type="developer", content=content)
    reasoning = await call(store, "save-reasoning", session_id="s", agent_type="developer", phase="risks",
                           content=content)
    assert written["redacted"] is True and reasoning["redacted"] is True
    for entry in await _all_logs(store, "s"):
        assert secret not in entry["content"] and "[REDACTED]" in entry["content"]
        assert entry["redacted"] is True and entry["content_length"] == len(entry["content"])
    assert secret not in repr(dump_tables(db_path))


async def test_event_payload_secrets_are_redacted(store: Store, db_path: Path) -> None:
    """A secret inside an event payload is redacted before storage and the row says so."""
    await new_session(store, "s")
    await call(store, "save-event", session_id="s", event_type="deploy",
               payload={"env": {"api_key": "abcd1234efgh5678"}, "ok": True})
    (entry,) = await _all_logs(store, "s", log_type="event")
    assert entry["redacted"] is True and entry["payload"]["ok"] is True
    assert "abcd1234efgh5678" not in repr(dump_tables(db_path))


@pytest.mark.parametrize("content", [
    "The password policy requires 12 characters.",
    "We used 5000 tokens: cheap.",
    "def get_token(self): return self._token",
    "Bearer tokens are validated in auth.py",
    "See sk-learn docs and the AKIA prefix rule",
    "called with max_tokens=4096 and input_tokens: 1800",
])
async def test_ordinary_prose_about_secrets_is_not_redacted(store: Store, content: str) -> None:
    """Text that merely talks about passwords or tokens is stored unchanged with redacted=false."""
    await new_session(store, "s")
    written = await call(store, "log-interaction", session_id="s", agent_type="developer", content=content)
    assert written["redacted"] is False
    assert (await _all_logs(store, "s"))[0]["content"] == content


async def test_long_unbroken_runs_are_redacted_in_linear_time(store: Store) -> None:
    """A 100 KB run like `ab-ab-ab-...` is logged promptly (an unbounded pattern once made this quadratic)."""
    await new_session(store, "s")
    for run in ("ab-" * 34_000, "a.b" * 34_000, "x+" * 50_000):
        with anyio.fail_after(20):
            written = await call(store, "log-interaction", session_id="s", agent_type="developer", content=run)
        assert written["redacted"] is False and written["content_length"] == len(run)


async def test_save_reasoning_stores_phase_confidence_and_references(store: Store) -> None:
    """A reasoning row keeps its phase, confidence, references, and defaults group_id to global."""
    await new_session(store, "s")
    await call(store, "save-reasoning", session_id="s", agent_type="pm", phase="understanding", content="scope",
               confidence="high", references=["README.md", "log:3"], iteration=1)
    (entry,) = await _all_logs(store, "s")
    assert (entry["log_type"], entry["phase"], entry["confidence"], entry["references"], entry["group_id"],
            entry["agent_type"], entry["iteration"]) == (
        "reasoning", "understanding", "high", ["README.md", "log:3"], "global", "project_manager", 1)


@pytest.mark.parametrize("arguments", [
    {"phase": "thinking"}, {"phase": "approach", "confidence": "certain"}, {"phase": "approach", "references": "x.py"},
    {"content": "x"},
])
async def test_bad_reasoning_is_invalid(store: Store, db_path: Path, arguments: dict[str, Any]) -> None:
    """Unknown phases and confidences, references that are not a list, or a missing phase are invalid."""
    await new_session(store, "s")
    arguments = {"content": "x", **arguments}
    with unchanged(db_path), pytest.raises(InvalidInput):
        await call(store, "save-reasoning", session_id="s", agent_type="developer", **arguments)


async def test_save_event_stores_the_payload(store: Store) -> None:
    """An event keeps its type, group and JSON payload; a non-object payload is invalid."""
    await new_session(store, "s")
    written = await call(store, "save-event", session_id="s", event_type="review.issues", group_id="A",
                         payload={"issues": [1, 2], "blocking": False})
    (entry,) = await _all_logs(store, "s")
    assert entry["log_id"] == written["event_id"] and written["idempotent"] is False
    assert (entry["log_type"], entry["event_type"], entry["group_id"], entry["payload"], entry["content"]) == (
        "event", "review.issues", "A", {"issues": [1, 2], "blocking": False}, None)
    with pytest.raises(InvalidInput):
        await call(store, "save-event", session_id="s", event_type="x", payload=[1, 2])
    with pytest.raises(InvalidInput):
        await call(store, "save-event", session_id="s", event_type="has space", payload={})


async def _mixed_logs(store: Store) -> None:
    await new_session(store, "s")
    await new_session(store, "other")
    for index in range(12):
        await call(store, "log-interaction", session_id="s", agent_type=("developer", "qa_expert", "pm")[index % 3],
                   content=f"i{index}", group_id="A" if index % 2 else "B")
        await call(store, "log-interaction", session_id="other", agent_type="developer", content=f"o{index}")
    for phase in ("understanding", "approach", "approach"):
        await call(store, "save-reasoning", session_id="s", agent_type="developer", phase=phase, content=phase,
                   group_id="A")
    await call(store, "save-event", session_id="s", event_type="merge", payload={"n": 1}, group_id="B")


async def test_get_logs_filters_combine(store: Store) -> None:
    """log_type, agent_type, group_id, phase and after_id each narrow the result and combine."""
    await _mixed_logs(store)
    everything = await _all_logs(store, "s")
    assert len(everything) == 16 and {e["session_id"] for e in everything} == {"s"}
    assert [e["log_id"] for e in everything] == sorted(e["log_id"] for e in everything)

    def pick(**match: Any) -> list[int]:
        return [e["log_id"] for e in everything if all(e[k] == v for k, v in match.items())]

    cases: list[tuple[dict[str, Any], list[int]]] = [
        ({"log_type": "interaction"}, pick(log_type="interaction")),
        ({"log_type": "reasoning"}, pick(log_type="reasoning")),
        ({"log_type": "event"}, pick(log_type="event")),
        ({"agent_type": "qa_expert"}, pick(agent_type="qa_expert")),
        ({"agent_type": "pm"}, pick(agent_type="project_manager")),
        ({"group_id": "A"}, pick(group_id="A")),
        ({"group_id": "A", "log_type": "interaction", "agent_type": "developer"},
         pick(group_id="A", log_type="interaction", agent_type="developer")),
        ({"phase": "approach"}, pick(phase="approach")),
        ({"after_id": everything[9]["log_id"]}, [e["log_id"] for e in everything[10:]]),
    ]
    for filters, expected in cases:
        got = [e["log_id"] for e in await _all_logs(store, "s", **filters)]
        assert got == expected and expected, filters
    assert len(pick(log_type="reasoning")) == 3 and len(pick(phase="approach")) == 2


async def test_get_logs_cursor_paging_visits_every_row_exactly_once(store: Store) -> None:
    """Following next_cursor with a small limit visits each row once, in ascending log_id, with filters."""
    await _mixed_logs(store)
    for filters, limit in [({}, 3), ({}, 16), ({}, 5), ({"log_type": "interaction"}, 5), ({"group_id": "A"}, 2)]:
        expected = [e["log_id"] for e in await _all_logs(store, "s", **filters)]
        seen: list[int] = []
        cursor = None
        for _ in range(20):
            page = await call(store, "get-logs", session_id="s", limit=limit, cursor=cursor, **filters)
            assert 0 < len(page["items"]) <= limit
            seen += [e["log_id"] for e in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == expected, (filters, limit)


async def test_get_logs_paging_sees_rows_written_between_pages(store: Store) -> None:
    """A cursor is a position, not a snapshot: rows written after page one appear on later pages."""
    await new_session(store, "s")
    for index in range(4):
        await call(store, "log-interaction", session_id="s", agent_type="developer", content=f"a{index}")
    page = await call(store, "get-logs", session_id="s", limit=3)
    await call(store, "log-interaction", session_id="s", agent_type="developer", content="late")
    rest = await call(store, "get-logs", session_id="s", limit=3, cursor=page["next_cursor"])
    assert [e["content"] for e in page["items"] + rest["items"]] == ["a0", "a1", "a2", "a3", "late"]


async def test_max_chars_cuts_long_content_and_flags_it(store: Store) -> None:
    """Content over max_chars is cut to exactly max_chars with truncated=true; content_length stays whole."""
    await new_session(store, "s")
    await call(store, "log-interaction", session_id="s", agent_type="developer", content="x" * 5000)
    await call(store, "log-interaction", session_id="s", agent_type="developer", content="y" * 100)
    await call(store, "save-event", session_id="s", event_type="big", payload={"blob": "z" * 500})
    long, short, event = (await call(store, "get-logs", session_id="s", max_chars=100))["items"]
    assert (len(long["content"]), long["truncated"], long["content_length"]) == (100, True, 5000)
    assert (short["content"], short["truncated"]) == ("y" * 100, False)
    assert event["truncated"] is True and len(json.dumps(event["payload"])) < 200
    default = (await call(store, "get-logs", session_id="s"))["items"][0]
    assert (len(default["content"]), default["truncated"]) == (2000, True)


async def test_a_page_of_huge_rows_stays_within_the_response_budget(store: Store) -> None:
    """Even 500 rows at max_chars=20000 come back under ~80k characters, truncated, and paging loses nothing."""
    await new_session(store, "s")
    for index in range(30):
        await call(store, "log-interaction", session_id="s", agent_type="developer", content=f"{index:02d}" * 15000)
    seen: list[int] = []
    cursor = None
    for _ in range(40):
        page = await call(store, "get-logs", session_id="s", limit=500, max_chars=20000, cursor=cursor)
        assert len(json.dumps(page)) < 80_000
        seen += [e["log_id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert page["truncated"] is True
    assert len(seen) == 30 == len(set(seen)) and seen == sorted(seen)


@pytest.mark.parametrize("arguments", [
    {"limit": 0}, {"limit": 501}, {"max_chars": 10}, {"max_chars": 20001}, {"cursor": "bm90IGpzb24="},
    {"cursor": "eyJhZnRlciI6ICJ4In0="}, {"after_id": -1}, {"log_type": "chat"}, {"phase": "thinking"},
])
async def test_get_logs_rejects_bad_paging_and_filters(store: Store, arguments: dict[str, Any]) -> None:
    """Out-of-range limits and max_chars, forged cursors and unknown enum values are invalid."""
    await new_session(store, "s")
    with pytest.raises(InvalidInput):
        await call(store, "get-logs", session_id="s", **arguments)


async def test_a_write_locked_out_too_long_is_busy_and_writes_nothing(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When another process keeps the write lock past the retries, the write fails `busy` and can be retried."""
    monkeypatch.setattr("baton.store.BUSY_TIMEOUT_MS", 20)  # the retry schedule, shortened
    async with await Store.open(db_path) as store:
        await new_session(store, "s")
        blocker = sqlite3.connect(db_path, isolation_level=None)
        try:
            blocker.execute("BEGIN IMMEDIATE")
            with unchanged(db_path), anyio.fail_after(30), pytest.raises(Busy, match="nothing was written, retry"):
                await call(store, "log-interaction", session_id="s", agent_type="developer", content="x")
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        retried = await call(store, "log-interaction", session_id="s", agent_type="developer", content="x")
        assert retried["idempotent"] is False and len(await _all_logs(store, "s")) == 1
