"""Development plans, and no lost updates when real processes write at once (plans, error patterns, skills)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from baton.errors import Conflict, InvalidInput, NotFound
from baton.store import Store
from tests.domain_helpers import op, run_concurrently
from tests.helpers import cli_env

PHASES = [{"name": f"phase {n}", "description": f"step {n}"} for n in range(1, 9)]


async def _plan(store: Store) -> None:
    await op(store, "create-session", session_id="s1", requirements="r", project="shop")
    await op(store, "save-development-plan", session_id="s1", plan_text="the plan", phases=PHASES,
             original_prompt="build a shop")


async def test_a_plan_is_saved_once_and_read_back_with_progress(store: Store) -> None:
    """Phases are numbered from 1 and pending; the same plan again is created=false, another is a conflict."""
    await _plan(store)
    again = await op(store, "save-development-plan", session_id="s1", plan_text="the plan", phases=PHASES,
                     original_prompt="build a shop")
    assert again["created"] is False and [p["phase_number"] for p in again["phases"]] == list(range(1, 9))
    with pytest.raises(Conflict, match="update-plan-phase"):
        await op(store, "save-development-plan", session_id="s1", plan_text="another plan", phases=PHASES)
    plan = await op(store, "get-development-plan", session_id="s1")
    assert (plan["completed"], plan["total"], plan["current_phase"]) == (0, 8, 1)
    await op(store, "create-session", session_id="s2", requirements="r")
    with pytest.raises(NotFound, match="no development plan"):
        await op(store, "get-development-plan", session_id="s2")


async def test_update_plan_phase_changes_one_phase_with_timestamps(store: Store) -> None:
    """A phase moves in_progress -> completed with started/completed times; the others are untouched."""
    await _plan(store)
    started = await op(store, "update-plan-phase", session_id="s1", phase_number=1, status="in_progress",
                       updated_by="developer_1")
    assert started["started_at"] is not None and started["completed_at"] is None
    done = await op(store, "update-plan-phase", session_id="s1", phase_name="phase 1", status="completed",
                    notes="merged")
    assert (done["started_at"], done["updated_by"], done["notes"]) == (started["started_at"], "developer_1", "merged")
    assert done["completed_at"] is not None
    plan = await op(store, "get-development-plan", session_id="s1")
    assert [p["status"] for p in plan["phases"]] == ["completed"] + ["pending"] * 7
    assert (plan["completed"], plan["current_phase"]) == (1, 2)


async def test_expected_status_makes_a_phase_update_conditional(store: Store) -> None:
    """A compare-and-set on a phase that already moved is a conflict and changes nothing."""
    await _plan(store)
    await op(store, "update-plan-phase", session_id="s1", phase_number=2, status="blocked")
    with pytest.raises(Conflict, match="phase 2 is blocked, not the expected pending"):
        await op(store, "update-plan-phase", session_id="s1", phase_number=2, status="in_progress",
                 expected_status="pending")
    with pytest.raises(NotFound, match="no phase 99"):
        await op(store, "update-plan-phase", session_id="s1", phase_number=99, status="completed")
    with pytest.raises(InvalidInput, match="nothing to update"):
        await op(store, "update-plan-phase", session_id="s1", phase_number=2)
    plan = await op(store, "get-development-plan", session_id="s1")
    assert plan["phases"][1]["status"] == "blocked"


async def test_a_retried_conditional_phase_update_with_its_key_is_not_a_conflict(store: Store) -> None:
    """update-plan-phase with expected_status and an idempotency_key: the retry (whose first answer was lost)
    returns the first result instead of failing because the phase has moved on."""
    await _plan(store)
    arguments = {"session_id": "s1", "phase_number": 3, "status": "in_progress", "expected_status": "pending",
                 "idempotency_key": "start-3"}
    first = await op(store, "update-plan-phase", **arguments)
    assert first["status"] == "in_progress"
    assert await op(store, "update-plan-phase", **arguments) == first
    with pytest.raises(Conflict, match="phase 3 is in_progress, not the expected pending"):
        await op(store, "update-plan-phase", **{**arguments, "idempotency_key": "another"})


@pytest.mark.slow
async def test_concurrent_cli_processes_updating_different_phases_lose_nothing(store: Store, db_path: Path) -> None:
    """Four `baton update-plan-phase` processes at once, one phase each: every update is kept."""
    await _plan(store)
    results = run_concurrently(db_path, [
        ["update-plan-phase", "--session-id", "s1", "--phase-number", str(n), "--status", "completed",
         "--notes", f"done by worker {n}"] for n in range(1, 5)
    ])
    assert [r.returncode for r in results] == [0] * 4, [r.stderr for r in results]
    plan = await op(store, "get-development-plan", session_id="s1")
    assert [(p["status"], p["notes"]) for p in plan["phases"]] == [
        ("completed", f"done by worker {n}") for n in range(1, 5)] + [("pending", None)] * 4
    assert plan["current_phase"] == 5


WORKER = """
import json, sys, anyio
from pathlib import Path
from baton.store import Store
from baton.tools import catalog

async def main(path, operation, arguments, times):
    async with await Store.open(Path(path)) as store:
        print("ready", flush=True)
        sys.stdin.readline()  # the parent says go once every worker is ready: the writes really overlap
        for i in range(times):
            args = {k: (v.replace("{i}", str(i)) if isinstance(v, str) else v) for k, v in arguments.items()}
            await catalog()[operation].run(store, args)

anyio.run(main, sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4]))
"""


def _workers(db_path: Path, operation: str, arguments: dict[str, object], processes: int, times: int) -> None:
    """`processes` processes, each with its own Store, each running the operation `times` times."""
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(db_path), operation, json.dumps(arguments),
                               str(times)], env=cli_env(db_path), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for _ in range(processes)]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n", proc.communicate(timeout=60)
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    errors = [proc.communicate(timeout=120)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * processes, errors


@pytest.mark.slow
async def test_concurrent_processes_count_every_error_occurrence(store: Store, db_path: Path) -> None:
    """Four processes x 25 saves of one error (different paths each time) give exactly 100 occurrences."""
    await op(store, "create-session", session_id="s1", requirements="r", project="shop")
    _workers(db_path, "save-error-pattern",
             {"project": "shop", "error_message": "ImportError: cannot import name 'x' from /src/m{i}.py:{i}"}, 4, 25)
    page = await op(store, "get-error-patterns", project="shop")
    assert [p["occurrences"] for p in page["items"]] == [100]


@pytest.mark.slow
async def test_concurrent_processes_get_distinct_skill_iterations(store: Store, db_path: Path) -> None:
    """Four processes x 25 runs of one skill get iterations 1..100, each exactly once."""
    await op(store, "create-session", session_id="s1", requirements="r")
    _workers(db_path, "save-skill-output", {"session_id": "s1", "skill_name": "lint", "agent_type": "developer",
                                            "output": {"ok": True}}, 4, 25)
    iterations = []
    for n in range(1, 101):
        read = await op(store, "get-skill-output", session_id="s1", skill_name="lint", iteration=n)
        iterations.append(read["iteration"])
    assert iterations == list(range(1, 101))
    latest = await op(store, "get-skill-output", session_id="s1", skill_name="lint")
    assert latest["iteration"] == 100


async def test_a_plan_with_long_phases_fits_one_response(store: Store) -> None:
    """100 phases with 10,000-character descriptions and notes still come back under the response budget."""
    await op(store, "create-session", session_id="s1", requirements="r")
    phases = [{"name": f"p{n}", "description": "d" * 10_000} for n in range(100)]
    saved = await op(store, "save-development-plan", session_id="s1", plan_text="t" * 200_000, phases=phases)
    await op(store, "update-plan-phase", session_id="s1", phase_number=3, notes="n" * 20_000)
    plan = await op(store, "get-development-plan", session_id="s1", max_chars=20_000)
    assert len(json.dumps(saved)) < 80_000 and len(json.dumps(plan)) < 80_000
    assert plan["truncated"] is True and plan["total"] == 100 and plan["phases"][2]["notes"].startswith("nnn")
