"""Schema-driven fuzzing of every tool through a real `baton serve --tools all` process.

    python -m stress.fuzz --cases 5000 --seed 1           # the long run (about a minute)
    python -m stress.fuzz --cases 800 --seed 1            # what CI runs (tests/test_fuzz_schema.py)
    python -m stress.fuzz --cases 5000 --seed 1 --max-size 5000000   # adversarial strings at the 5 MB caps
    python -m stress.fuzz --seed 1 --case 1234 --trace    # replay one random case after the fixtures

The tools and their schemas come from the server's own `tools/list` (the SDK's stdio client).
Before the cases run, a few sessions, task groups, criteria, logs, packages, patterns and a plan
are created, and the ids in every successful result are harvested, so valid calls reach the deep
code paths. `--cases` random cases draw arguments from each tool's published inputSchema
(fuzz_args.py: valid, boundary, wrong types, missing or unknown keys, hostile values); then a
sweep puts every adversarial string (`--max-size` long, capped by the field's maxLength) into
every free-text field of an otherwise valid call. Each call is checked against the contract:

- an answer within `--hang` seconds (`--slow` seconds or more is reported too: a DoS);
- a success whose structuredContent validates against the published outputSchema, or an error
  whose text (after the SDK's `Error executing tool NAME: `) starts with a documented code, never
  `internal:`;
- a failed call, and a successful call of a read-only tool, commit nothing (`PRAGMA data_version`);
- the server process is still alive.

Arguments the SDK cannot serialise (lone surrogates, NaN) go over a raw JSON-RPC pipe to a second
server process on the same database, which at the end also receives malformed JSON-RPC
(fuzz_wire.py). Last, `PRAGMA integrity_check` and `foreign_key_check`. Exit 1 on any contract
failure; each failure is printed with its case number, tool and arguments (long strings as
`unit * n`, so the preview is the reproduction).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import anyio
import pydantic_core
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]  # no stubs in the dev extra
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError

from stress.fuzz_args import ArgumentGenerator, Pools, sweep
from stress.fuzz_report import CODES, FAILURE_KINDS, Failure, Summary, error_code, preview
from stress.fuzz_wire import RawServer, is_finite_json, probe, stderr_tail

__all__ = ["Summary", "fuzz", "main", "preview"]

SWEEP_BASE = 1_000_000  # case numbers of the adversarial sweep, after the random cases
HARVEST = {"session_id", "group_id", "package_id", "pattern_id", "criterion_id", "next_cursor", "project"}


class DataVersion:
    """`PRAGMA data_version` on a connection of its own: it changes exactly when another connection commits."""

    def __init__(self, db_path: Path) -> None:
        self._conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, isolation_level=None)

    def __call__(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        self._conn.close()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: fall back to a signal probe
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True


@dataclass
class Tool:
    name: str
    input_schema: dict[str, Any]
    input: Draft202012Validator
    output: Draft202012Validator | None
    read_only: bool


FIXTURES: list[tuple[str, dict[str, Any]]] = [
    ("create-session", {"session_id": "fz-s1", "requirements": "fuzz target one", "project": "fz-p1",
                        "mode": "parallel"}),
    ("create-session", {"session_id": "fz-s2", "requirements": "fuzz target two", "project": "fz-p1"}),
    ("create-session", {"session_id": "fz-s3", "requirements": "fuzz target three", "project": "fz-p2"}),
    *[("create-task-group", {"session_id": s, "group_id": g, "name": f"group {g}", "complexity": 5})
      for s in ("fz-s1", "fz-s2") for g in ("G1", "G2")],
    ("save-success-criteria", {"session_id": "fz-s1", "criteria": [{"criterion": "tests pass"},
                                                                   {"criterion": "docs updated"}]}),
    ("log-interaction", {"session_id": "fz-s1", "agent_type": "developer", "group_id": "G1",
                         "content": "implemented the parser; api_key=sk-abcdefghijklmnop1234"}),
    ("save-reasoning", {"session_id": "fz-s1", "agent_type": "developer", "phase": "understanding",
                        "group_id": "G1", "content": "the parser fails on line 12"}),
    ("save-event", {"session_id": "fz-s1", "event_type": "spawned", "payload": {"agent": "qa_expert"}}),
    ("save-state", {"session_id": "fz-s1", "state_type": "pm", "state": {"phase": 1}}),
    ("log-tokens", {"session_id": "fz-s1", "agent_type": "developer", "input_tokens": 10, "output_tokens": 5,
                    "model": "opus"}),
    ("save-context-package", {"session_id": "fz-s1", "package_type": "research", "producer": "developer",
                              "consumers": ["qa_expert", "tech_lead"], "summary": "what the parser does",
                              "content": "details"}),
    ("save-skill-output", {"session_id": "fz-s1", "skill_name": "lint-check", "output": {"errors": 0}}),
    ("save-error-pattern", {"session_id": "fz-s1", "error_message": "ImportError: no module named x at /a/b.py:3",
                            "solution": "pip install x", "error_type": "ImportError"}),
    ("save-strategy", {"session_id": "fz-s1", "topic": "testing", "insight": "run the fast tests first"}),
    ("save-development-plan", {"session_id": "fz-s1", "plan_text": "three steps",
                               "phases": [{"name": "design"}, {"name": "build"}, {"name": "ship"}]}),
]


class Fuzzer:
    def __init__(self, db_path: Path, seed: int, hang_s: float, slow_s: float, max_size: int,
                 log_dir: Path, max_hangs: int, budget_s: float | None) -> None:
        self.db_path = db_path
        self.seed = seed
        self.hang_s = hang_s
        self.slow_s = slow_s
        self.max_hangs = max_hangs
        self.budget_s = budget_s
        self.pools = Pools()
        seeded: dict[str, list[Any]] = {"phase_number": [1, 2, 3], "phase_name": ["design", "build"],
                             "criterion": ["tests pass", "docs updated"], "skill_name": ["lint-check"],
                             "error_message": ["ImportError: no module named x at /a/b.py:3"],
                             "idempotency_key": ["fz-key-1", "fz-key-2"]}
        for name, values in seeded.items():
            for value in values:
                self.pools.add(name, value)
        self.generator = ArgumentGenerator(self.pools, max_size)
        self.summary = Summary(seed=seed)
        self.trace: IO[str] | None = None  # one line per case, for looking into a run
        self.sweep = True  # after the random cases, every adversarial string in every free-text field
        self.tools: dict[str, Tool] = {}
        self.sdk_log = log_dir / "serve-sdk.stderr"
        self.raw_log = log_dir / "serve-raw.stderr"
        self._stack: AsyncExitStack | None = None
        self.client: Client | None = None
        self.pid = 0
        self.raw: RawServer | None = None
        self.version: DataVersion | None = None
        self._errlog: IO[str] | None = None
        self._raw_tg: anyio.abc.TaskGroup | None = None
        self._raw_stderr: IO[bytes] | None = None

    def command(self) -> list[str]:
        return [sys.executable, "-m", "baton", "serve", "--db", str(self.db_path), "--tools", "all",
                "--log-level", "WARNING"]

    # -- the SDK-client server -------------------------------------------------------------------
    async def start(self) -> None:
        self._stack = AsyncExitStack()
        self._errlog = self._stack.enter_context(self.sdk_log.open("a"))
        params = StdioServerParameters(command=self.command()[0], args=self.command()[1:],
                                       env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.client = await self._stack.enter_async_context(Client(stdio_client(params, errlog=self._errlog)))
        with anyio.fail_after(60):
            health = await self.client.call_tool("health", {})
        assert health.structured_content is not None, health.content
        self.pid = int(health.structured_content["pid"])

    async def stop(self) -> None:
        if self._stack is not None:
            # Not under a shield scope of ours: the SDK's own task-group scopes must be the innermost.
            await self._stack.aclose()
        self._stack, self.client = None, None

    async def restart(self) -> None:
        self.summary.restarts += 1
        await self.stop()
        await self.start()

    async def list_tools(self) -> None:
        assert self.client is not None
        listed = await self.client.list_tools()
        for tool in listed.tools:
            output = None
            if tool.output_schema is not None:
                Draft202012Validator.check_schema(tool.output_schema)
                output = Draft202012Validator(tool.output_schema)
            read_only = bool(tool.annotations and tool.annotations.read_only_hint)
            schema = dict(tool.input_schema)
            self.tools[tool.name] = Tool(tool.name, schema, Draft202012Validator(schema), output, read_only)

    # -- one call and its contract ---------------------------------------------------------------
    def fail(self, kind: str, case: int, tool: str, mode: str, arguments: Any, detail: str) -> None:
        self.summary.failures.append(Failure(kind, case, tool, mode, preview(arguments), detail[:400]))

    def harvest(self, value: Any, rng: random.Random, depth: int = 0) -> None:
        if depth > 3:
            return
        if isinstance(value, dict):
            for key, item in value.items():
                if key in HARVEST and isinstance(item, str | int) and not isinstance(item, bool) and item != "":
                    self.pools.add("cursor" if key == "next_cursor" else key, item, rng)
                else:
                    self.harvest(item, rng, depth + 1)
        elif isinstance(value, list):
            for item in value[:5]:
                self.harvest(item, rng, depth + 1)

    async def _call_sdk(self, tool: str, arguments: dict[str, Any]) -> tuple[str, Any]:
        """('result', CallToolResult as a dict) | ('schema', message) | ('protocol', message) | ('hang', '')"""
        assert self.client is not None
        try:
            with anyio.fail_after(self.hang_s):
                result = await self.client.call_tool(tool, arguments)
        except TimeoutError:
            return "hang", ""
        except MCPError as exc:
            return "protocol", f"JSON-RPC error {exc.error.code}: {exc.error.message}"
        except RuntimeError as exc:
            if "structured content" in str(exc) or "output schema" in str(exc):
                return "schema", str(exc)
            return "protocol", f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # the transport broke: the process most likely died
            return "protocol", f"{type(exc).__name__}: {exc}"
        return "result", result.model_dump(mode="json", by_alias=True)

    async def _call_raw(self, tool: str, arguments: Any) -> tuple[str, Any]:
        assert self.raw is not None
        answer = await self.raw.call_tool(tool, arguments, self.hang_s)
        if answer is None:
            return ("hang" if self.raw.alive() else "protocol"), "no answer" if self.raw.alive() else "exited"
        if "error" in answer:  # acceptable here: what no SDK client can send may be refused at the protocol level
            error = answer["error"] if isinstance(answer["error"], dict) else {}
            return "jsonrpc_error", f"JSON-RPC {error.get('code')}: {str(error.get('message'))[:100]}"
        return "result", answer.get("result", {})

    async def run_case(self, index: int, tool: str, mode: str, arguments: dict[str, Any],
                       rng: random.Random) -> None:
        assert self.version is not None
        summary = self.summary
        summary.cases += 1
        summary.per_tool[tool] += 1
        summary.modes[mode] += 1
        # The SDK client cannot send lone surrogates, NaN or what pydantic cannot serialise: raw pipe.
        try:
            pydantic_core.to_json(arguments)
            raw = not is_finite_json(arguments)
        except (ValueError, pydantic_core.PydanticSerializationError, RecursionError):
            raw = True
        before = self.version()
        started = time.perf_counter()
        status, payload = await (self._call_raw(tool, arguments) if raw else self._call_sdk(tool, arguments))
        elapsed = time.perf_counter() - started
        summary.slowest = sorted([*summary.slowest, (elapsed, f"{tool} {preview(arguments, 80)}")],
                                 reverse=True)[:5]
        via = "raw pipe" if raw else "SDK client"
        if self.trace is not None:
            outcome = status if status != "result" else (
                "ok" if not payload.get("isError") else " ".join(
                    str(b.get("text", "")) for b in payload.get("content", []) if isinstance(b, dict)))
            print(f"{index:5} {elapsed * 1000:7.1f} ms {mode:16} {tool:24} {outcome[:160]!r}"
                  f" <- {preview(arguments, 160)}", file=self.trace, flush=True)
        if status == "hang":
            self.fail("hang", index, tool, mode, arguments, f"no answer within {self.hang_s:.0f} s ({via})")
            await self._recover(raw)
            return
        if elapsed >= self.slow_s:
            self.fail("slow", index, tool, mode, arguments, f"answered after {elapsed:.1f} s ({via})")
        if status == "jsonrpc_error":
            summary.codes[payload.split(":")[0]] += 1
            if self.version() != before:
                self.fail("partial_write", index, tool, mode, arguments, f"{payload} but committed")
        elif status == "schema":
            self.fail("schema_violation", index, tool, mode, arguments, payload)
        elif status == "protocol":
            self.fail("protocol_error", index, tool, mode, arguments, f"{payload} ({via})")
        else:
            self._check_result(index, tool, mode, arguments, payload, before, rng)
        for name, alive, proc_log in (("SDK", self.client is not None and _alive(self.pid), self.sdk_log),
                                      ("raw", self.raw is not None and self.raw.alive(), self.raw_log)):
            if not alive:
                self.fail("server_death", index, tool, mode, arguments,
                          f"the {name} server process is gone; stderr: {stderr_tail(proc_log, 3)}")
                await self._recover(name == "raw")

    def _check_result(self, index: int, tool: str, mode: str, arguments: dict[str, Any], result: dict[str, Any],
                      before: int, rng: random.Random) -> None:
        assert self.version is not None
        spec = self.tools.get(tool)
        text = " ".join(str(b.get("text", "")) for b in result.get("content", []) if isinstance(b, dict))
        changed = self.version() != before
        if result.get("isError"):
            code = error_code(tool, text)
            if code == "internal":
                self.fail("internal", index, tool, mode, arguments, text)
            elif code not in CODES:
                self.fail("uncoded", index, tool, mode, arguments, text)
            else:
                self.summary.codes[code] += 1
            message = text.removeprefix(f"Error executing tool {tool}: ")
            # pydantic's wording ("String should match pattern", "Input should be") names a per-field
            # constraint a JSON schema can state; cross-field rules and opaque cursors are not counted.
            if code == "invalid" and spec is not None and " should " in message and spec.input.is_valid(arguments):
                self.summary.stricter_than_schema[f"{tool}: {message[:110]}"] += 1
            if changed:
                self.fail("partial_write", index, tool, mode, arguments, f"failed ({text[:200]}) but committed")
            return
        structured = result.get("structuredContent")
        self.summary.successes += 1
        self.summary.per_tool_ok[tool] += 1
        if spec is not None and not spec.input.is_valid(arguments):
            error = min(spec.input.iter_errors(arguments), key=lambda e: len(list(e.absolute_path)))
            where = "/".join(map(str, error.absolute_path)) or "(top)"
            self.summary.laxer_than_schema[f"{tool}: {where}: {error.message[:90]}"] += 1
        if spec is not None and spec.read_only and changed:
            self.fail("read_only_wrote", index, tool, mode, arguments, "a readOnlyHint tool committed a change")
        if spec is not None and spec.output is not None:
            if not isinstance(structured, dict):
                self.fail("schema_violation", index, tool, mode, arguments, "success without structuredContent")
                return
            errors = sorted(spec.output.iter_errors(structured), key=lambda e: list(e.absolute_path))
            if errors:
                detail = "; ".join(f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message[:120]}"
                                   for e in errors[:3])
                self.fail("schema_violation", index, tool, mode, arguments, detail)
        self.harvest(structured, rng)

    async def _recover(self, raw: bool) -> None:
        if raw:
            self.summary.restarts += 1
            await self._start_raw(restart=True)
        else:
            await self.restart()

    # -- the raw server --------------------------------------------------------------------------
    async def _start_raw(self, restart: bool = False) -> None:
        if restart and self.raw is not None:
            await self.raw.stop()
        assert self._raw_tg is not None and self._raw_stderr is not None
        self.raw = RawServer(self.command(), self._raw_stderr)
        await self.raw.start(self._raw_tg)

    async def fixtures(self) -> None:
        assert self.client is not None
        rng = random.Random(self.seed)
        for tool, arguments in FIXTURES:
            result = await self.client.call_tool(tool, arguments)
            if result.is_error:
                raise RuntimeError(f"fixture {tool} failed: {result.content}")
            self.harvest(result.structured_content, rng)
        for name, value in (("session_id", "fz-s1"), ("group_id", "G1"), ("group_id", "global")):
            self.pools.add(name, value)
        listed = await self.client.call_tool("get-success-criteria", {"session_id": "fz-s1"})
        self.harvest(listed.structured_content, rng)

    async def run(self, cases: int, only_case: int | None = None) -> Summary:
        started = time.perf_counter()
        with self.raw_log.open("ab") as raw_stderr:
            self._raw_stderr = raw_stderr
            async with anyio.create_task_group() as tg:
                self._raw_tg = tg
                try:
                    await self._run(cases, only_case, started)
                finally:
                    if self.raw is not None:
                        await self.raw.stop()
                    await self.stop()
                    if self.version is not None:
                        self.version.close()
                    tg.cancel_scope.cancel()
        self.summary.integrity, self.summary.foreign_key_violations = check_file(self.db_path)
        self.summary.elapsed_s = time.perf_counter() - started
        return self.summary

    async def _run(self, cases: int, only_case: int | None, started: float) -> None:
        await self.start()
        await self.list_tools()
        self.summary.tools = sorted(self.tools)
        await self.fixtures()
        self.version = DataVersion(self.db_path)
        await self._start_raw()
        names = sorted(self.tools)
        order = random.Random(self.seed).sample(names, len(names))
        swept = [(tool, arguments) for tool in names
                 for arguments in sweep(self.generator, tool, self.tools[tool].input_schema, self.seed)]
        if only_case is not None:
            indices: list[int] = [only_case]
        else:
            indices = [*range(cases), *(range(SWEEP_BASE, SWEEP_BASE + len(swept)) if self.sweep else [])]
        for index in indices:
            if self.summary.count("hang") >= self.max_hangs:
                self.fail("hang", index, "-", "-", {}, f"stopped after {self.max_hangs} hangs")
                break
            if self.budget_s is not None and time.perf_counter() - started > self.budget_s:
                self.fail("slow", index, "-", "-", {}, f"time budget of {self.budget_s:.0f} s spent; stopped")
                break
            rng = random.Random(self.seed * 1_000_003 + index)
            if index >= SWEEP_BASE:
                swept_tool, swept_arguments = swept[index - SWEEP_BASE]
                await self.run_case(index, swept_tool, "sweep", swept_arguments, rng)
                continue
            arguments: dict[str, Any] = {}
            if rng.random() < 0.02:  # a tool that does not exist: must be a coded not_found
                tool, mode = rng.choice(["no-such-tool", "get_session", "", "GET-SESSION"]), "unknown_tool"
            else:
                tool = order[index % len(order)]
                mode, arguments = self.generator.case(tool, self.tools[tool].input_schema, rng)
            await self.run_case(index, tool, mode, arguments, rng)
        assert self.raw is not None
        self.summary.wire = await probe(self.raw, "fz-s1", self.hang_s)
        if not self.raw.alive():
            self.fail("server_death", -1, "-", "wire", {}, f"raw server died: {stderr_tail(self.raw_log, 3)}")
        else:
            answer = await self.raw.call_tool("health", {}, self.hang_s)
            if answer is None or "result" not in answer:
                self.fail("unanswered", -1, "health", "wire", {}, f"after the malformed messages: {answer!r:.200}")


def check_file(db_path: Path) -> tuple[str, int]:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        integrity = "; ".join(str(row[0]) for row in conn.execute("PRAGMA integrity_check").fetchall())
        violations = len(conn.execute("PRAGMA foreign_key_check").fetchall())
    finally:
        conn.close()
    return integrity, violations


async def fuzz(cases: int, seed: int, *, hang_s: float = 15.0, slow_s: float = 2.0, max_size: int = 200_000,
               max_hangs: int = 10, budget_s: float | None = None, only_case: int | None = None,
               work_dir: Path | None = None, trace: IO[str] | None = None, adversarial_sweep: bool = True) -> Summary:
    """Run `cases` fuzz cases against a fresh database; `work_dir` keeps the database and server logs."""
    with tempfile.TemporaryDirectory(prefix="baton-fuzz-") as scratch:
        directory = work_dir or Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        fuzzer = Fuzzer(directory / "fuzz.db", seed, hang_s, slow_s, max_size, directory, max_hangs, budget_s)
        fuzzer.trace = trace
        fuzzer.sweep = adversarial_sweep
        return await fuzzer.run(cases, only_case)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stress.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tools", default="all", choices=["all"], help="the profile fuzzed (every tool)")
    parser.add_argument("--case", type=int, default=None, help="replay only this case index (after the fixtures)")
    parser.add_argument("--hang", type=float, default=15.0, help="seconds without an answer that count as a hang")
    parser.add_argument("--slow", type=float, default=2.0, help="seconds after which an answer is reported as slow")
    parser.add_argument("--max-size", type=int, default=200_000,
                        help="length of adversarial strings (capped by each field's maxLength)")
    parser.add_argument("--max-hangs", type=int, default=10, help="stop after this many hangs")
    parser.add_argument("--no-sweep", action="store_true",
                        help="skip the sweep of every adversarial string through every free-text field")
    parser.add_argument("--budget", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--show", type=int, default=8, help="failures to print per kind (about a quarter of it)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the database and server logs here")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--trace", action="store_true", help="print every case and its outcome on stderr")
    args = parser.parse_args(argv)
    summary = anyio.run(lambda: fuzz(
        args.cases, args.seed, hang_s=args.hang, slow_s=args.slow, max_size=args.max_size, max_hangs=args.max_hangs,
        only_case=args.case, budget_s=args.budget, adversarial_sweep=not args.no_sweep, work_dir=args.keep,
        trace=sys.stderr if args.trace else None))
    if args.json:
        print(json.dumps({"cases": summary.cases, "successes": summary.successes, "codes": dict(summary.codes),
                          "failures": {k: summary.count(k) for k in FAILURE_KINDS},
                          "wire_failures": [w.label for w in summary.wire if not w.ok],
                          "integrity": summary.integrity, "elapsed_s": round(summary.elapsed_s, 1)}, indent=1))
    else:
        print(summary.render(shown=args.show))
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
