"""`baton demo`: a short orchestration through a real `baton serve` subprocess over stdio.

It spawns the server exactly as an MCP client (VS Code, Claude Code) would, drives a session
through the MCP protocol with the SDK's client, then prints the session's dashboard snapshot.
By default the demo writes to a temporary database that is removed when it ends, so trying it
leaves nothing behind in the real one; `--db PATH` keeps the demo session there instead (tagged
with project `baton-demo`, so `baton list-sessions --project baton-demo --db PATH` finds it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

STEPS: list[tuple[str, dict[str, Any]]] = [
    ("create-task-group", {"group_id": "API", "name": "Password-reset API", "complexity": 5,
                           "initial_tier": "senior_software_engineer", "security_sensitive": True}),
    ("create-task-group", {"group_id": "UI", "name": "Password-reset form", "complexity": 3}),
    ("save-success-criteria", {"criteria": [{"criterion": "All tests pass"},
                                            {"criterion": "Reset token expires after 30 minutes"},
                                            {"criterion": "Lighthouse a11y score >= 95",
                                             "required_for_completion": False}]}),
    ("save-reasoning", {"agent_type": "pm", "phase": "understanding",
                        "content": "Two groups: the API (security-sensitive) and the form."}),
    ("log-interaction", {"agent_type": "orchestrator", "content": "Spawning SSE for API, developer for UI."}),
    ("update-task-group", {"group_id": "API", "status": "in_progress", "assigned_to": "sse_1"}),
    ("update-task-group", {"group_id": "UI", "status": "in_progress", "assigned_to": "developer_1"}),
    ("log-interaction", {"agent_type": "developer", "group_id": "UI", "agent_id": "developer_1",
                         "content": "Form done; using api_key=sk-demo-1234567890abcdef for staging."}),
    ("log-tokens", {"agent_type": "developer", "input_tokens": 1800, "output_tokens": 2400,
                    "cache_read_tokens": 9000, "model": "sonnet", "group_id": "UI"}),
    ("update-task-group", {"group_id": "UI", "status": "approved_pending_merge",
                           "increment": {"qa_attempts": 1, "tl_review_attempts": 1}}),
    ("update-success-criterion", {"criterion": "All tests pass", "status": "met", "evidence": "CI run #42 green"}),
    ("log-tokens", {"agent_type": "senior_software_engineer", "input_tokens": 2600, "output_tokens": 5100,
                    "model": "opus", "group_id": "API"}),
    ("save-state", {"state_type": "orchestrator", "state": {"phase": "development", "active_groups": 2}}),
]


def _render(snapshot: dict[str, Any]) -> str:
    session = snapshot["session"]
    groups = snapshot["task_groups"]
    criteria = snapshot["success_criteria"]
    lines = [
        f"Session {session['session_id']}  [{session['status']}, {session['mode']}]  project={session['project']}",
        f"  requirements: {session['requirements']}",
        f"  task groups: {groups['by_status']}",
    ]
    for group in groups["items"]:
        lines.append(
            f"    {group['group_id']:<4} {group['status']:<24} {group['assigned_to'] or '-':<12}"
            f" qa_attempts={group['qa_attempts']} tl_reviews={group['tl_review_attempts']}"
        )
    lines.append(f"  success criteria: {criteria['met']}/{criteria['total']} met,"
                 f" ready_for_completion={criteria['ready_for_completion']}")
    tokens = snapshot["token_summary"]
    lines.append(f"  tokens: {tokens['total']} total, by agent {tokens['by_agent_type']}")
    lines.append(f"  reasoning by phase: {snapshot['reasoning']}   counts: {snapshot['counts']}")
    lines.append("  recent logs (newest first):")
    for entry in snapshot["recent_logs"]:
        flag = " (redacted)" if entry["redacted"] else ""
        lines.append(f"    #{entry['log_id']} {entry['log_type']:<11} {entry['agent_type'] or '-':<14}"
                     f" {(entry['content'] or entry['event_type'] or '')[:70]}{flag}")
    return "\n".join(lines)


async def _run(db_path: str, as_json: bool) -> int:
    from mcp.client import Client
    from mcp.client.stdio import StdioServerParameters

    server = StdioServerParameters(
        command=sys.executable, args=["-m", "baton", "serve", "--log-level", "WARNING"], env={"BATON_DB": db_path}
    )
    # Progress is for a person reading the terminal; with --json only the snapshot goes to stdout.
    out = sys.stderr if as_json else sys.stdout
    print(f"baton demo: spawning `baton serve` over stdio; database {db_path}", file=out)
    async with Client(server) as client:
        tools = await client.list_tools()
        print(f"  connected: {len(tools.tools)} tools", file=out)
        created = await client.call_tool("create-session", {
            "requirements": "Add password reset to the invoicing app", "mode": "parallel", "project": "baton-demo",
        })
        if created.is_error or not created.structured_content:
            print(f"  create-session failed: {created.content}", file=sys.stderr)
            return 1
        session_id = created.structured_content["session_id"]
        print(f"  create-session -> {session_id}", file=out)
        for name, arguments in STEPS:
            result = await client.call_tool(name, {"session_id": session_id, **arguments})
            if result.is_error:
                print(f"  {name} failed: {result.content}", file=sys.stderr)
                return 1
            print(f"  {name} ok", file=out)
        snapshot = await client.call_tool("dashboard-snapshot", {"session_id": session_id})
    data = snapshot.structured_content or {}
    if not as_json:
        print("\nDashboard snapshot:", file=out)
    print(json.dumps(data, indent=2) if as_json else _render(data))
    return 0


NEXT_STEPS = """
The demo's session was {fate}.
Next: connect an MCP client (README "Configure your client"; `baton config claude-code`, `vscode`, `copilot`
or `inspector` prints a ready block). `baton` may not be on your PATH: in a client's configuration use the
command {command} with args ["serve"]."""


def _baton_command() -> str:
    """The absolute path of this installation's `baton` script (what a client must spawn)."""
    beside = os.path.join(os.path.dirname(sys.executable), "baton")
    return beside if os.path.exists(beside) else f"{sys.executable} -m baton"


def main(command: str, argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="baton demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", help="Keep the demo session in this database (default: a temporary one, removed "
                                     "at the end; BATON_DB is not used, so the real database stays untouched).")
    parser.add_argument("--json", action="store_true", help="Print the whole dashboard snapshot as JSON.")
    args = parser.parse_args(argv)
    import anyio

    os.environ.pop("BATON_DB", None)  # the child gets the path explicitly
    if args.db:
        from baton.paths import resolve_db_path

        db_path = str(resolve_db_path(args.db))
        code = anyio.run(_run, db_path, args.json)
        fate = f"kept in {db_path}"
    else:
        with tempfile.TemporaryDirectory(prefix="baton-demo-") as scratch:
            code = anyio.run(_run, str(os.path.join(scratch, "demo.db")), args.json)
        fate = "in a temporary database, now removed; `baton demo --db PATH` keeps it"
    if code == 0:
        text = NEXT_STEPS.format(fate=fate, command=json.dumps(_baton_command()))
        print(text, file=sys.stderr if args.json else sys.stdout)
    return code
