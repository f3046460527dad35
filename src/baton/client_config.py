"""`baton config CLIENT`: a configuration block for an MCP client that points at *this* installation.

The README's blocks say `"command": "baton"`, which only works when the `baton` on the client's PATH
is this one; a client started from a desktop launcher rarely has a virtualenv on its PATH. So the
command here is the absolute path of the `baton` script installed beside this interpreter, or this
interpreter with `-m baton` when there is no script (a source checkout run with `python -m`).
With `--http URL` the blocks are those of docs/http.md: a header whose key is a placeholder the
client fills in (an environment variable or a prompted input), never a key.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from baton.errors import BatonError, InvalidInput

CLIENTS = ("claude-code", "vscode", "copilot", "inspector")
INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"


def baton_command() -> list[str]:
    """How to start this installation's `baton`: its script beside sys.executable, else `python -m baton`."""
    bindir = Path(sys.executable).parent
    for name in ("baton.exe", "baton") if os.name == "nt" else ("baton",):
        script = bindir / name
        if script.is_file() and os.access(script, os.X_OK):
            return [str(script.absolute())]
    return [sys.executable, "-m", "baton"]


def serve_args(tools: str, db: Path | None) -> list[str]:
    args = ["serve"]
    if tools != "core":
        args += ["--tools", tools]
    if db is not None:
        args += ["--db", str(db)]
    return args


def tool_names(tools: str) -> list[str]:
    """The names `--tools` serves, for the Copilot agent's required allowlist."""
    from baton.tools import select

    return [op.name for op in select(tools)]


def _json(config: dict[str, Any]) -> str:
    return json.dumps(config, indent=2)


def stdio_block(client: str, tools: str, db: Path | None) -> str:
    command, *prefix = baton_command()
    args = [*prefix, *serve_args(tools, db)]
    if client == "claude-code":
        line = shlex.join(["claude", "mcp", "add", "--scope", "user", "baton", "--", command, *args])
        mcp_json = _json({"mcpServers": {"baton": {"command": command, "args": args}}})
        return f"# Claude Code: run this once\n{line}\n\n# or put this in a project .mcp.json\n{mcp_json}"
    if client == "vscode":
        return _json({"servers": {"baton": {"type": "stdio", "command": command, "args": args}}})
    if client == "copilot":
        server = {"type": "local", "command": command, "args": args, "tools": tool_names(tools)}
        return _json({"mcpServers": {"baton": server}})
    return shlex.join(["npx", "--yes", INSPECTOR, "--cli", command, *args, "--method", "tools/list"])


def http_block(client: str, tools: str, url: str) -> str:
    if client == "claude-code":
        line = f'claude mcp add --transport http baton {shlex.quote(url)} --header "Authorization: Bearer $BATON_KEY"'
        server = {"type": "http", "url": url, "headers": {"Authorization": "Bearer ${BATON_KEY}"}}
        return (f"# Claude Code: run this once (BATON_KEY set in your shell)\n{line}\n\n"
                f"# or put this in a project .mcp.json\n{_json({'mcpServers': {'baton': server}})}")
    if client == "vscode":
        key_input = {"type": "promptString", "id": "baton-key", "description": "Baton API key", "password": True}
        server = {"type": "http", "url": url, "headers": {"Authorization": "Bearer ${input:baton-key}"}}
        return _json({"inputs": [key_input], "servers": {"baton": server}})
    if client == "copilot":
        server = {"type": "http", "url": url, "headers": {"Authorization": "Bearer $COPILOT_MCP_BATON_KEY"},
                  "tools": tool_names(tools)}
        return _json({"mcpServers": {"baton": server}})
    return (f"npx --yes {INSPECTOR} --cli {shlex.quote(url)} --transport http "
            '--header "Authorization: Bearer $BATON_KEY" --method tools/list')


def _parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"baton {command}", description="Print a ready-to-paste MCP client "
                                     "configuration that starts this installation's `baton serve`.")
    parser.add_argument("client", choices=CLIENTS)
    parser.add_argument("--db", help="Database the server should use (default: the server's own default).")
    parser.add_argument("--tools", default="core", help="core (default), all, or a comma-separated list of tools.")
    parser.add_argument("--http", metavar="URL", help="A running `baton serve --transport http`, e.g. "
                        "https://baton.example.com/mcp, instead of a server the client spawns.")
    return parser


def main(command: str, argv: list[str]) -> int:
    args = _parser(command).parse_args(argv)
    try:
        tool_names(args.tools)  # an unknown tool is reported here, not by the client much later
        if args.http is not None:
            if args.db is not None:
                raise InvalidInput("--db does not apply with --http: the HTTP server opens its own database")
            if not args.http.startswith(("http://", "https://")):
                raise InvalidInput(f"--http {args.http!r} is not an http:// or https:// URL")
            text = http_block(args.client, args.tools, args.http)
        else:
            from baton.paths import resolve_db_path

            db = resolve_db_path(args.db) if args.db else None
            text = stdio_block(args.client, args.tools, db)
    except BatonError as exc:
        print(json.dumps(exc.as_json()), file=sys.stderr)
        return exc.exit_code
    print(text)
    return 0
