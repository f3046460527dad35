"""SIGKILL in the middle of write bursts: no acknowledged write is lost and the file stays sound."""

from __future__ import annotations

from pathlib import Path

import pytest
from stress.crash import run_crash


@pytest.mark.slow
async def test_sigkill_mid_burst_loses_no_acknowledged_write(tmp_path: Path) -> None:
    """Three rounds of killing two busy servers; then every ack is present once, integrity ok, a new server serves."""
    result = await run_crash(tmp_path / "crash.db", rounds=3, servers=2, lanes=4, seed=4)
    verdict = result.verdict
    assert result.kills == 6
    assert result.unknown > 0, "no call was in flight at a kill: the test did not kill mid-burst"
    assert result.tally.errors == []
    assert (verdict.lost, verdict.duplicated, verdict.phantom) == ([], [], [])
    assert verdict.counter_expected_min <= verdict.counter <= verdict.counter_expected_max
    assert verdict.integrity == "ok"
    assert result.fresh_server_ok
