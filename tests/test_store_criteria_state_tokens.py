"""Success criteria, saved state with history, and token usage with its summaries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from baton.errors import Conflict, InvalidInput, NotFound
from baton.store import Store
from tests.core_helpers import (  # noqa: F401 (the *_fixture names: stores start from a migrated copy)
    TIMESTAMP,
    copied_store_fixture,
    migrated_template_fixture,
    new_session,
    unchanged,
)
from tests.helpers import call


async def _criteria(store: Store, session_id: str = "s", *texts: str | tuple[str, bool]) -> list[dict[str, Any]]:
    criteria = [{"criterion": t} if isinstance(t, str) else {"criterion": t[0], "required_for_completion": t[1]}
                for t in texts]
    saved = await call(store, "save-success-criteria", session_id=session_id, criteria=criteria)
    items: list[dict[str, Any]] = saved["items"]
    return items


async def test_save_success_criteria_returns_every_criterion(store: Store) -> None:
    """Saved criteria start pending, required unless said otherwise, with ids in insertion order."""
    await new_session(store, "s")
    items = await _criteria(store, "s", "tests pass", ("docs updated", False))
    assert [(c["criterion"], c["status"], c["required_for_completion"], c["actual"], c["evidence"])
            for c in items] == [("tests pass", "pending", True, None, None), ("docs updated", "pending", False,
                                                                              None, None)]
    assert items[0]["criterion_id"] < items[1]["criterion_id"] and TIMESTAMP.match(items[0]["created_at"])


async def test_saving_criteria_adds_and_never_replaces(store: Store) -> None:
    """A second save adds new texts and keeps existing ones, their status and evidence untouched."""
    await new_session(store, "s")
    first = await _criteria(store, "s", "tests pass", "lint clean")
    met = await call(store, "update-success-criterion", session_id="s", criterion="tests pass", status="met",
                     evidence="CI #1")
    items = await _criteria(store, "s", ("tests pass", False), "coverage 90%")
    assert [c["criterion"] for c in items] == ["tests pass", "lint clean", "coverage 90%"]
    assert items[0] == met and items[1] == first[1]


async def test_update_success_criterion_by_id_or_by_text(store: Store) -> None:
    """A criterion is found by its id or its exact text; status, actual and evidence are stored."""
    await new_session(store, "s")
    first, second = await _criteria(store, "s", "tests pass", "p95 < 200ms")
    by_id = await call(store, "update-success-criterion", session_id="s", criterion_id=first["criterion_id"],
                       status="met", evidence="run 42")
    assert (by_id["status"], by_id["evidence"], by_id["actual"]) == ("met", "run 42", None)
    by_text = await call(store, "update-success-criterion", session_id="s", criterion="p95 < 200ms",
                         status="failed", actual="p95 = 340ms")
    assert (by_text["criterion_id"], by_text["status"], by_text["actual"]) == (second["criterion_id"], "failed",
                                                                               "p95 = 340ms")
    again = await call(store, "update-success-criterion", session_id="s", criterion_id=first["criterion_id"],
                       status="blocked")
    assert again["evidence"] == "run 42", "omitted evidence is kept"


async def test_criterion_of_another_session_is_not_found(store: Store, db_path: Path) -> None:
    """Ids are checked against the session: another session's criterion id is not_found."""
    await new_session(store, "s")
    await new_session(store, "t")
    (theirs,) = await _criteria(store, "t", "tests pass")
    await _criteria(store, "s", "something")
    with unchanged(db_path):
        with pytest.raises(NotFound):
            await call(store, "update-success-criterion", session_id="s", criterion_id=theirs["criterion_id"],
                       status="met")
        with pytest.raises(NotFound):
            await call(store, "update-success-criterion", session_id="s", criterion="tests pass", status="met")
        with pytest.raises(NotFound):
            await call(store, "update-success-criterion", session_id="ghost", criterion="x", status="met")
        with pytest.raises(NotFound):
            await _criteria(store, "ghost", "x")


@pytest.mark.parametrize("arguments", [
    {"status": "met"}, {"criterion_id": 1, "criterion": "a", "status": "met"}, {"criterion_id": 1, "status": "done"},
    {"criterion_id": 0, "status": "met"},
])
async def test_bad_criterion_updates_are_invalid(store: Store, db_path: Path, arguments: dict[str, Any]) -> None:
    """Neither or both of id and text, unknown statuses and non-positive ids are invalid."""
    await new_session(store, "s")
    await _criteria(store, "s", "a")
    with unchanged(db_path), pytest.raises(InvalidInput):
        await call(store, "update-success-criterion", session_id="s", **arguments)


@pytest.mark.parametrize("criteria", [[], [{"criterion": ""}], [{"criterion": "ok"}, {"text": "x"}], "tests pass"])
async def test_bad_criteria_lists_are_invalid(store: Store, db_path: Path, criteria: Any) -> None:
    """An empty list, blank text, unknown keys or a bare string are invalid and nothing is saved."""
    await new_session(store, "s")
    with unchanged(db_path), pytest.raises(InvalidInput):
        await call(store, "save-success-criteria", session_id="s", criteria=criteria)


async def test_get_success_criteria_counts(store: Store) -> None:
    """met, total and required_unmet count correctly; ready only when every required criterion is met."""
    await new_session(store, "s")
    empty = await call(store, "get-success-criteria", session_id="s")
    assert (empty["items"], empty["met"], empty["total"], empty["required_unmet"],
            empty["ready_for_completion"]) == ([], 0, 0, 0, False)
    await _criteria(store, "s", "a", "b", ("nice to have", False))

    async def summary() -> tuple[int, int, int, bool]:
        got = await call(store, "get-success-criteria", session_id="s")
        return got["met"], got["total"], got["required_unmet"], got["ready_for_completion"]

    assert await summary() == (0, 3, 2, False)
    await call(store, "update-success-criterion", session_id="s", criterion="nice to have", status="met")
    assert await summary() == (1, 3, 2, False)
    await call(store, "update-success-criterion", session_id="s", criterion="a", status="met")
    await call(store, "update-success-criterion", session_id="s", criterion="b", status="blocked")
    assert await summary() == (2, 3, 1, False)
    await call(store, "update-success-criterion", session_id="s", criterion="b", status="met")
    await call(store, "update-success-criterion", session_id="s", criterion="nice to have", status="failed")
    assert await summary() == (2, 3, 0, True)


async def test_save_state_keeps_every_version(store: Store) -> None:
    """Each save is a new version per (type, group); get-state reads the latest or any earlier one."""
    await new_session(store, "s")
    versions = [await call(store, "save-state", session_id="s", state_type="pm", state={"n": n}) for n in range(3)]
    assert [v["version"] for v in versions] == [1, 2, 3] and TIMESTAMP.match(versions[0]["saved_at"])
    other = await call(store, "save-state", session_id="s", state_type="group_status", group_id="A", state={"x": 1})
    orchestrator = await call(store, "save-state", session_id="s", state_type="orchestrator", state={"o": 1})
    assert other["version"] == 1 and orchestrator["version"] == 1
    latest = await call(store, "get-state", session_id="s", state_type="pm")
    assert latest == {"state": {"n": 2}, "version": 3, "saved_at": versions[2]["saved_at"]}
    assert (await call(store, "get-state", session_id="s", state_type="pm", version=1))["state"] == {"n": 0}
    assert (await call(store, "get-state", session_id="s", state_type="group_status", group_id="A"))["state"] == {
        "x": 1}


async def test_a_retried_save_state_with_its_key_saves_no_second_version(store: Store, db_path: Path) -> None:
    """save-state with an idempotency_key: the retry returns the first version and writes nothing."""
    await new_session(store, "s")
    first = await call(store, "save-state", session_id="s", state_type="pm", state={"n": 1}, idempotency_key="k1")
    assert first["version"] == 1 and first["idempotent"] is False
    with unchanged(db_path):
        again = await call(store, "save-state", session_id="s", state_type="pm", state={"n": 1}, idempotency_key="k1")
        assert again == {**first, "idempotent": True}
        with pytest.raises(Conflict, match="idempotency_key 'k1'"):
            await call(store, "save-state", session_id="s", state_type="pm", state={"n": 2}, idempotency_key="k1")
    assert (await call(store, "save-state", session_id="s", state_type="pm", state={"n": 1}))["version"] == 2


async def test_missing_state_is_not_found(store: Store) -> None:
    """No saved state, a version that does not exist, or an unknown session are not_found."""
    await new_session(store, "s")
    await call(store, "save-state", session_id="s", state_type="pm", state={"a": 1})
    with pytest.raises(NotFound):
        await call(store, "get-state", session_id="s", state_type="investigation")
    with pytest.raises(NotFound, match="version 2"):
        await call(store, "get-state", session_id="s", state_type="pm", version=2)
    with pytest.raises(NotFound):
        await call(store, "get-state", session_id="s", state_type="pm", group_id="A")
    with pytest.raises(NotFound):
        await call(store, "save-state", session_id="ghost", state_type="pm", state={})


@pytest.mark.parametrize("arguments", [
    {"state_type": "pm", "state": [1, 2]}, {"state_type": "pm", "state": "text"}, {"state_type": "dev", "state": {}},
    {"state_type": "pm", "state": {"blob": "x" * 40_000}}, {"state_type": "pm", "state": {}, "group_id": "${G}"},
])
async def test_bad_state_is_invalid(store: Store, db_path: Path, arguments: dict[str, Any]) -> None:
    """A non-object state, an unknown type, an oversized state or a placeholder group are invalid."""
    await new_session(store, "s")
    with unchanged(db_path), pytest.raises(InvalidInput):
        await call(store, "save-state", session_id="s", **arguments)


async def _usage(store: Store) -> None:
    await new_session(store, "s")
    await new_session(store, "other")
    rows = [
        ("developer", "developer_1", "A", "sonnet", 100, 200, 1000, 50),
        ("developer", "developer_2", "B", "sonnet", 10, 20, 0, 0),
        ("qa_expert", "qa_1", "A", "haiku", 1, 2, 3, 4),
        ("pm", None, None, None, 5, 0, 0, 0),
    ]
    for agent_type, agent_id, group_id, model, i, o, cr, cw in rows:
        arguments: dict[str, Any] = {"agent_type": agent_type, "input_tokens": i, "output_tokens": o,
                                     "cache_read_tokens": cr, "cache_write_tokens": cw}
        arguments |= {k: v for k, v in (("agent_id", agent_id), ("group_id", group_id), ("model", model)) if v}
        await call(store, "log-tokens", session_id="s", **arguments)
    await call(store, "log-tokens", session_id="other", agent_type="developer", input_tokens=99_999)


async def test_token_summary_totals_include_cache_tokens(store: Store) -> None:
    """total sums input, output, cache read and cache write tokens of this session only."""
    await _usage(store)
    summary = await call(store, "token-summary", session_id="s")
    assert {k: summary[k] for k in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")} == {
        "input_tokens": 116, "output_tokens": 222, "cache_read_tokens": 1003, "cache_write_tokens": 54}
    assert summary["total"] == 116 + 222 + 1003 + 54


@pytest.mark.parametrize(("by", "expected"), [
    ("agent_type", {"developer": 1380, "qa_expert": 10, "project_manager": 5}),
    ("agent_id", {"developer_1": 1350, "developer_2": 30, "qa_1": 10, "unknown": 5}),
    ("group_id", {"A": 1360, "B": 30, "unknown": 5}),
    ("model", {"sonnet": 1380, "haiku": 10, "unknown": 5}),
])
async def test_token_summary_by_every_key(store: Store, by: str, expected: dict[str, int]) -> None:
    """`by` groups totals per agent type, agent, group or model; rows without the key are `unknown`."""
    await _usage(store)
    summary = await call(store, "token-summary", session_id="s", by=by)
    assert summary["by"] == expected and sum(expected.values()) == summary["total"]


async def test_token_summary_of_a_quiet_session_is_zero(store: Store) -> None:
    """A session without usage sums to zero; an unknown session or `by` value is an error."""
    await new_session(store, "s")
    summary = await call(store, "token-summary", session_id="s")
    expected = {"total": 0, "input_tokens": 0, "output_tokens": 0, "cache_read_tokens": 0, "cache_write_tokens": 0,
                "by": {}}
    assert {k: summary[k] for k in expected} == expected
    with pytest.raises(NotFound):
        await call(store, "token-summary", session_id="ghost")
    with pytest.raises(InvalidInput):
        await call(store, "token-summary", session_id="s", by="colour")


async def test_log_tokens_is_idempotent_by_key(store: Store, db_path: Path) -> None:
    """A repeated key with the same usage is replayed; with different usage it is a conflict."""
    await new_session(store, "s")
    first = await call(store, "log-tokens", session_id="s", agent_type="developer", input_tokens=5,
                       idempotency_key="call-1")
    assert first["idempotent"] is False
    with unchanged(db_path):
        again = await call(store, "log-tokens", session_id="s", agent_type="developer", input_tokens=5,
                           idempotency_key="call-1")
        assert again == {**first, "idempotent": True}
        with pytest.raises(Conflict):
            await call(store, "log-tokens", session_id="s", agent_type="developer", input_tokens=6,
                       idempotency_key="call-1")
    assert (await call(store, "token-summary", session_id="s"))["total"] == 5


@pytest.mark.parametrize("arguments", [
    {"input_tokens": -1}, {"input_tokens": 1, "output_tokens": -5}, {"input_tokens": 1, "cache_read_tokens": -1},
    {"input_tokens": "many"}, {"input_tokens": 1.5}, {}, {"input_tokens": 1, "model": ""},
])
async def test_bad_token_counts_are_invalid(store: Store, db_path: Path, arguments: dict[str, Any]) -> None:
    """Negative, fractional, missing or non-numeric token counts are invalid and nothing is logged."""
    await new_session(store, "s")
    with unchanged(db_path), pytest.raises(InvalidInput):
        await call(store, "log-tokens", session_id="s", agent_type="developer", **arguments)
