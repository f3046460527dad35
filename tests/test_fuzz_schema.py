"""The CI fast path of the schema fuzzer (stress/fuzz.py): a fixed seed, 800 random cases over every
tool of a real `baton serve --tools all` subprocess, the sweep of every adversarial string (200 KB,
or the field's maxLength) through every free-text field, then malformed JSON-RPC over a raw pipe.
About 20 s on two cores; bounded by a 15 s hang limit, a stop after two hangs and a 120 s budget
even when a defect makes calls slow.

The long run is `python -m stress.fuzz --cases 5000 --seed 1`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from stress.fuzz import Summary, fuzz, preview
from stress.fuzz_wire import garbage

CASES = 800


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Summary]:
    work_dir: Path = tmp_path_factory.mktemp("fuzz")

    async def run() -> Summary:
        return await fuzz(CASES, seed=1, hang_s=15.0, slow_s=2.0, max_size=200_000, max_hangs=2, budget_s=120.0,
                          work_dir=work_dir)

    yield anyio.run(run)


def test_every_tool_call_keeps_the_contract(summary: Summary) -> None:
    """Each call answers in time with a schema-valid success or a coded error, a failed call writes
    nothing, and the server never dies; the summary lists each failure with its case to replay."""
    tool_failures = [f for f in summary.failures if f.kind != "wire"]
    assert not tool_failures, summary.render()
    # Every random case ran and the sweep ran after them (the budget did not cut the run short).
    assert summary.cases - summary.modes["sweep"] == CASES and summary.modes["sweep"] > 0, summary.modes


def test_every_malformed_message_with_an_id_is_answered(summary: Summary) -> None:
    """Invalid JSON, batches, jsonrpc 1.0, params as a list, deep nesting, huge numbers: each answered."""
    assert len(summary.wire) == len(garbage("fz-s1"))
    unanswered = [f"{w.label}: {w.detail}" for w in summary.wire if not w.ok]
    assert not unanswered, summary.render()


def test_the_database_is_intact_after_fuzzing(summary: Summary) -> None:
    """PRAGMA integrity_check and foreign_key_check on the file the fuzzed servers wrote."""
    assert summary.integrity == "ok"
    assert summary.foreign_key_violations == 0


def test_the_generated_calls_reach_every_tool_and_mostly_succeed_when_valid(summary: Summary) -> None:
    """A generator whose calls all fail validation would prove nothing: every listed tool is called,
    and most tools see at least one success (the deep code paths ran)."""
    assert len(summary.tools) >= 40
    assert [tool for tool in summary.tools if summary.per_tool[tool] == 0] == []
    never_succeeded = [tool for tool in summary.tools if summary.per_tool_ok[tool] == 0]
    assert len(never_succeeded) <= 0.1 * len(summary.tools), never_succeeded


@pytest.mark.parametrize("value", ["\\" * 20000, ("eyJa-" * 9)[:43], "-----BEGIN PRIVATE KEY-----" * 100, "x" * 61])
def test_a_failure_preview_reproduces_the_argument(value: str) -> None:
    """The preview printed for a failing case evaluates back to the exact string that was sent."""
    assert eval(preview({"k": value})) == {"k": value}
