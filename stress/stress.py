"""Multi-process stress: N `baton serve` processes (each driven by a real MCP client over stdio,
with several concurrent calls in flight) plus M `baton` CLI processes, all writing one database.

    python -m stress.stress                      # N = 1, 2, 4, 8 servers, 4 CLI workers
    python -m stress.stress --servers 8 --clis 4 --writes 300

Afterwards every acknowledged write must be in the file exactly once, nothing unattempted may be
there, and the shared counter must equal the acknowledged increments. Prints writes/s, p50/p99
latency (MCP calls; CLI calls include process start-up) and the errors clients saw. Exit 1 if any
write was lost or duplicated, the counter is off, or any error reached a client.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import anyio

from stress.harness import Tally, Verdict, cli_write, mcp_write, percentile, prepare_database, serve, verify


@dataclass
class StressResult:
    servers: int
    clis: int
    seconds: float
    mcp_seconds: float
    tally: Tally
    verdict: Verdict

    @property
    def writes_per_second(self) -> float:
        return self.tally.acked_count / self.seconds if self.seconds else 0.0

    @property
    def mcp_writes_per_second(self) -> float:
        """MCP writes over the time the servers were writing (the CLI workers' process start-ups aside)."""
        return len(self.tally.latencies_ms) / self.mcp_seconds if self.mcp_seconds else 0.0

    def line(self) -> str:
        t, v = self.tally, self.verdict
        return (
            f"N={self.servers} servers + {self.clis} CLIs: {t.acked_count} writes acknowledged in "
            f"{self.seconds:.1f}s = {self.writes_per_second:.0f} writes/s "
            f"(MCP alone {self.mcp_writes_per_second:.0f}/s); MCP latency p50 "
            f"{percentile(t.latencies_ms, 50):.1f} ms p99 {percentile(t.latencies_ms, 99):.1f} ms; CLI p50 "
            f"{percentile(t.cli_latencies_ms, 50):.0f} ms; errors {len(t.errors)}; lost {len(v.lost)}; "
            f"duplicated {len(v.duplicated)}; phantom {len(v.phantom)}; counter {v.counter} "
            f"(expected {v.counter_expected_min}); integrity {v.integrity}"
        )


async def run_stress(db_path: Path, servers: int, clis: int, writes: int, concurrency: int = 4,
                     cli_writes: int = 10) -> StressResult:
    """`writes` calls per server (over `concurrency` concurrent loops) and `cli_writes` per CLI worker."""
    await prepare_database(db_path)
    tally = Tally()
    connected = 0
    all_connected = anyio.Event()
    started = 0.0
    servers_done = 0.0

    async def server_worker(number: int) -> None:
        nonlocal connected, started, servers_done
        async with serve(db_path) as client:
            connected += 1
            if connected == servers:
                started = time.perf_counter()
                all_connected.set()
            await all_connected.wait()

            async def loop(lane: int) -> None:
                for index in range(lane, writes, concurrency):
                    await mcp_write(client, tally, f"s{number}", index)

            async with anyio.create_task_group() as lanes:
                for lane in range(concurrency):
                    lanes.start_soon(loop, lane)
            servers_done = max(servers_done, time.perf_counter())

    async def cli_worker(number: int) -> None:
        await all_connected.wait()
        for index in range(cli_writes):
            await cli_write(db_path, tally, f"c{number}", index)

    with anyio.fail_after(600):
        async with anyio.create_task_group() as workers:
            for number in range(servers):
                workers.start_soon(server_worker, number)
            for number in range(clis):
                workers.start_soon(cli_worker, number)
            if servers == 0:
                started = time.perf_counter()
                all_connected.set()
    seconds = time.perf_counter() - started
    mcp_seconds = servers_done - started if servers else 0.0
    return StressResult(servers, clis, seconds, mcp_seconds, tally, verify(db_path, tally))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stress.stress", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", default="1,2,4,8", help="comma-separated server counts (default 1,2,4,8)")
    parser.add_argument("--clis", type=int, default=4, help="CLI worker processes alongside (default 4)")
    parser.add_argument("--writes", type=int, default=250, help="writes per server (default 250)")
    parser.add_argument("--concurrency", type=int, default=4, help="calls in flight per server (default 4)")
    parser.add_argument("--cli-writes", type=int, default=10, help="writes per CLI worker (default 10)")
    args = parser.parse_args(argv)
    failed = False
    for servers in [int(n) for n in args.servers.split(",")]:
        with tempfile.TemporaryDirectory(prefix="baton-stress-") as tmp:
            result = anyio.run(run_stress, Path(tmp) / "stress.db", servers, args.clis, args.writes,
                               args.concurrency, args.cli_writes)
        print(result.line(), flush=True)
        for error in result.tally.errors[:5]:
            print(f"  error: {error}")
        failed = failed or bool(result.tally.errors) or not result.verdict.ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
