"""SIGKILL in the middle of write bursts: no acknowledged write is lost and the file stays sound."""

from __future__ import annotations

from pathlib import Path

import pytest
from stress.crash import run_crash

from baton.errors import Conflict
from baton.store import Store
from baton.tools import catalog
from tests.helpers import call


@pytest.mark.slow
async def test_sigkill_mid_burst_loses_no_acknowledged_write(tmp_path: Path) -> None:
    """Three rounds of killing two busy servers, lost answers retried with their keys: every write present once,
    the counter exact, integrity ok, a new server serves."""
    result = await run_crash(tmp_path / "crash.db", rounds=3, servers=2, lanes=4, seed=4)
    verdict = result.verdict
    assert result.kills == 6
    assert result.tally.retries > 0, "no call was in flight at a kill: the test did not kill mid-burst"
    assert result.tally.errors == [] and result.tally.unanswered() == []
    assert (verdict.lost, verdict.duplicated, verdict.phantom) == ([], [], [])
    assert verdict.counter == verdict.counter_expected_min == verdict.counter_expected_max
    assert verdict.integrity == "ok"
    assert result.fresh_server_ok


async def test_update_task_group_retried_with_its_key_increments_once(store: Store) -> None:
    """A retry of an increment whose answer was lost (same idempotency_key) returns the first result and
    adds nothing; the same key with another payload is a conflict."""
    await call(store, "create-session", session_id="retry", requirements="retry safety")
    await catalog()["create-task-group"].run(store, {"session_id": "retry", "group_id": "G", "name": "g"})
    first = await call(store, "update-task-group", session_id="retry", group_id="G",
                       increment={"qa_attempts": 1}, idempotency_key="k1")
    again = await call(store, "update-task-group", session_id="retry", group_id="G",
                       increment={"qa_attempts": 1}, idempotency_key="k1")
    assert first == again and first["qa_attempts"] == 1
    groups = await call(store, "get-task-groups", session_id="retry")
    assert groups["items"][0]["qa_attempts"] == 1
    with pytest.raises(Conflict):
        await call(store, "update-task-group", session_id="retry", group_id="G",
                   increment={"qa_attempts": 2}, idempotency_key="k1")
