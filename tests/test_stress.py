"""Many processes, one file: servers over stdio and CLI processes write at once and nothing is lost."""

from __future__ import annotations

from pathlib import Path

import pytest
from stress.stress import run_stress


@pytest.mark.slow
async def test_two_servers_and_two_clis_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    """Every acknowledged write is in the file exactly once and the shared counter is exact."""
    result = await run_stress(tmp_path / "stress.db", servers=2, clis=2, writes=60, concurrency=4, cli_writes=5)
    verdict = result.verdict
    assert result.tally.errors == []
    assert result.tally.acked_count == 2 * 60 + 2 * 5
    assert (verdict.lost, verdict.duplicated, verdict.phantom) == ([], [], [])
    assert verdict.counter == verdict.counter_expected_min == len(result.tally.acked["update-task-group"])
    assert verdict.integrity == "ok"
