"""HTTP load, scaled down: SDK streamable-HTTP clients writing through two workers lose nothing,
even when the server is stopped with SIGTERM mid-load (stress/http_load.py runs the full size)."""

from __future__ import annotations

from pathlib import Path

import pytest
from stress.http_load import AGENT, run_load


@pytest.mark.slow
async def test_concurrent_http_clients_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    """4 clients x 50 writes through 2 workers: all acknowledged, each in the file once, as the key's agent."""
    result = await run_load(tmp_path / "load.db", clients=4, writes=50, workers=2)
    verdict = result.verdict
    assert result.tally.errors == []
    assert verdict.acked == len(result.tally.latencies_ms) == 4 * 50
    assert (verdict.lost, verdict.duplicated, verdict.phantom, verdict.integrity) == ([], [], [], "ok")
    assert result.foreign_agents == 0, f"rows not attributed to {AGENT}"
    assert result.server_exit == 0
    assert result.ok


@pytest.mark.slow
async def test_sigterm_mid_load_loses_no_acknowledged_write_and_retries_complete_the_rest(tmp_path: Path) -> None:
    """SIGTERM after 60 acknowledged writes: the server exits 0 with every acknowledged write in the file;
    a new server given the unanswered writes again (same idempotency keys) leaves each attempted write once."""
    result = await run_load(tmp_path / "load.db", clients=4, writes=60, workers=2, sigterm_after=60)
    assert result.server_exit == 0
    assert result.tally.errors == [] and result.retry_errors == []
    assert len(result.tally.latencies_ms) >= 60
    assert (result.verdict.lost, result.verdict.duplicated, result.verdict.phantom) == ([], [], [])
    retried = result.after_retry
    assert retried is not None
    assert retried.acked == len(result.tally.calls) and (retried.lost, retried.duplicated) == ([], [])
    assert result.ok
