"""Crash safety: SIGKILL `baton serve` processes in the middle of write bursts, many times.

    python -m stress.crash                        # 20 rounds, 2 servers x 4 concurrent calls each
    python -m stress.crash --rounds 50 --servers 3

Each round starts the servers, drives writes through real MCP clients over stdio, and after a
random number of acknowledgements (so calls are in flight) kills every server with SIGKILL.
Afterwards every write a client saw acknowledged must be in the file exactly once (a write whose
answer was lost may or may not be there, but never twice), `PRAGMA integrity_check` must say ok,
and a fresh server must start and serve reads and writes. Exit 1 otherwise.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import anyio

from stress.harness import SESSION_ID, Tally, Verdict, kill, mcp_write, prepare_database, serve, server_pid, verify


@dataclass
class CrashResult:
    rounds: int
    kills: int
    seconds: float
    tally: Tally
    verdict: Verdict
    fresh_server_ok: bool

    @property
    def unknown(self) -> int:
        """Writes in flight when the server died: the client never learned their outcome."""
        return self.tally.attempted_count - self.tally.acked_count

    def line(self) -> str:
        v = self.verdict
        return (
            f"{self.rounds} rounds, {self.kills} SIGKILLs in {self.seconds:.1f}s: {v.acked} writes acknowledged, "
            f"{self.unknown} in flight at a kill; acknowledged writes lost {len(v.lost)}; duplicated "
            f"{len(v.duplicated)}; phantom {len(v.phantom)}; counter {v.counter} (acknowledged "
            f"{v.counter_expected_min}..attempted {v.counter_expected_max}); integrity {v.integrity}; "
            f"fresh server serves: {self.fresh_server_ok}"
        )


async def _round(db_path: Path, number: int, servers: int, lanes: int, rng: random.Random, tally: Tally) -> int:
    """One round: start servers, write, SIGKILL them all after a random number of acks. Returns kills."""
    kill_after = rng.randint(5, 60)
    acked_this_round = 0
    pids: list[int] = []
    ready = anyio.Event()
    kill_now = anyio.Event()

    async def server_worker(index: int) -> None:
        nonlocal acked_this_round
        try:
            async with serve(db_path) as client:
                pids.append(await server_pid(client))
                if len(pids) == servers:
                    ready.set()
                await ready.wait()

                async def lane(start: int) -> None:
                    nonlocal acked_this_round
                    index_ = start
                    while True:
                        if await mcp_write(client, tally, f"r{number}s{index}", index_):
                            acked_this_round += 1
                            if acked_this_round >= kill_after:
                                kill_now.set()
                        index_ += lanes

                async with anyio.create_task_group() as group:
                    for start in range(lanes):
                        group.start_soon(lane, start)
        except Exception:  # the connection dies with the server: that is the point of this round
            ready.set()

    with anyio.fail_after(120):
        async with anyio.create_task_group() as group:
            for index in range(servers):
                group.start_soon(server_worker, index)
            await kill_now.wait()
            for pid in pids:
                kill(pid)
    return len(pids)


async def fresh_server_serves(db_path: Path) -> bool:
    with anyio.fail_after(60):
        async with serve(db_path) as client:
            health = await client.call_tool("health", {})
            written = await client.call_tool("log-interaction", {
                "session_id": SESSION_ID, "agent_type": "developer", "content": "after the crashes"})
            page = await client.call_tool("get-logs", {"session_id": SESSION_ID, "limit": 1})
    return not (health.is_error or written.is_error or page.is_error)


async def run_crash(db_path: Path, rounds: int, servers: int = 2, lanes: int = 4, seed: int = 0) -> CrashResult:
    await prepare_database(db_path)
    rng = random.Random(seed)
    tally = Tally()
    kills = 0
    started = time.perf_counter()
    for number in range(rounds):
        kills += await _round(db_path, number, servers, lanes, rng, tally)
    seconds = time.perf_counter() - started
    verdict = verify(db_path, tally)
    return CrashResult(rounds, kills, seconds, tally, verdict, await fresh_server_serves(db_path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stress.crash", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--lanes", type=int, default=4, help="concurrent calls per server")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="baton-crash-") as tmp:
        result = anyio.run(run_crash, Path(tmp) / "crash.db", args.rounds, args.servers, args.lanes, args.seed)
    print(result.line(), flush=True)
    for error in result.tally.errors[:5]:
        print(f"  error surfaced before a kill: {error}")
    return 0 if result.verdict.ok and result.fresh_server_ok and not result.tally.errors else 1


if __name__ == "__main__":
    sys.exit(main())
