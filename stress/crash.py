"""Crash safety: SIGKILL `baton serve` processes in the middle of write bursts, many times.

    python -m stress.crash                        # 20 rounds, 2 servers x 4 concurrent calls each
    python -m stress.crash --rounds 50 --servers 3

Each round starts the servers, drives writes through real MCP clients over stdio, and after a
random number of acknowledgements (so calls are in flight) kills every server with SIGKILL.
A write whose answer a kill lost is retried, as an agent would, with the same idempotency key by
the next round's server (or finally a fresh one). Afterwards every acknowledged write must be in
the file exactly once, the shared counter must equal the increments exactly, `PRAGMA
integrity_check` must say ok, and the fresh server must serve reads and writes. Exit 1 otherwise.
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
    unanswered_at_end: int


    def line(self) -> str:
        v = self.verdict
        return (
            f"{self.rounds} rounds, {self.kills} SIGKILLs in {self.seconds:.1f}s: {v.acked} writes acknowledged; "
            f"{self.tally.retries} retries of writes whose answer a kill lost (same idempotency key), "
            f"{self.unanswered_at_end} unanswered after the last kill; acknowledged writes lost {len(v.lost)}; "
            f"duplicated {len(v.duplicated)}; phantom {len(v.phantom)}; counter {v.counter} (acknowledged "
            f"increments {v.counter_expected_min}); integrity {v.integrity}; "
            f"fresh server serves: {self.fresh_server_ok}"
        )


async def _round(db_path: Path, number: int, servers: int, lanes: int, rng: random.Random, tally: Tally) -> int:
    """One round: start servers, write, SIGKILL them all after a random number of acks. Returns kills."""
    kill_after = rng.randint(5, 60)
    acked_this_round = 0
    pids: list[int] = []
    ready = anyio.Event()
    kill_now = anyio.Event()
    unanswered = tally.unanswered()

    async def server_worker(index: int) -> None:
        nonlocal acked_this_round
        try:
            async with serve(db_path) as client:
                pids.append(await server_pid(client))
                if len(pids) == servers:
                    ready.set()
                await ready.wait()
                if index == 0:
                    # What an agent does after its server died: retry with the same idempotency keys.
                    for writer, call_index in unanswered:
                        tally.retries += 1
                        await mcp_write(client, tally, writer, call_index)

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


async def fresh_server_serves(db_path: Path, tally: Tally) -> bool:
    """A fresh server starts, retries the writes whose answers the last kill lost, reads and writes."""
    with anyio.fail_after(120):
        async with serve(db_path) as client:
            for writer, call_index in tally.unanswered():
                tally.retries += 1
                await mcp_write(client, tally, writer, call_index)
            health = await client.call_tool("health", {})
            written = await mcp_write(client, tally, "fresh", 0)
            page = await client.call_tool("get-logs", {"session_id": SESSION_ID, "limit": 1})
    return written and not (health.is_error or page.is_error)


async def run_crash(db_path: Path, rounds: int, servers: int = 2, lanes: int = 4, seed: int = 0) -> CrashResult:
    await prepare_database(db_path)
    rng = random.Random(seed)
    tally = Tally()
    kills = 0
    started = time.perf_counter()
    for number in range(rounds):
        kills += await _round(db_path, number, servers, lanes, rng, tally)
    seconds = time.perf_counter() - started
    in_flight = len(tally.unanswered())
    fresh_ok = await fresh_server_serves(db_path, tally)
    return CrashResult(rounds, kills, seconds, tally, verify(db_path, tally), fresh_ok, in_flight)


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
    exact = result.verdict.counter == result.verdict.counter_expected_min and not result.tally.unanswered()
    return 0 if result.verdict.ok and exact and result.fresh_server_ok and not result.tally.errors else 1


if __name__ == "__main__":
    sys.exit(main())
