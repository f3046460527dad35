"""The command line: `baton serve` and one subcommand per operation (the CLI twin of every tool).

`baton <operation> --param value ...` or `baton <operation> --json '{...}'` prints the result as
JSON on stdout; a failure prints {"error": {"code", "message"}} on stderr and exits with
2 invalid, 3 not_found, 4 conflict/invalid_transition, 5 busy, 6 unauthorized/forbidden, 1 anything else.
This module never imports the MCP SDK (about a second of start-up); `serve` imports it lazily.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import logging
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from baton import __version__
from baton.errors import BatonError, InvalidInput, NotFound
from baton.operations import Operation, field_takes_json

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo

# Commands that are not operations: name -> (module, summary). Each module has
# `main(command: str, argv: list[str]) -> int` and is imported only when its command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("baton.cli", "Run the MCP server: on stdio (what MCP clients spawn), or over HTTP (--transport http)."),
    "keys": ("baton.keys", "API keys for the HTTP transport (create | list | revoke)."),
    "audit": ("baton.keys", "Who wrote what, when, through which tool (--session, --agent, --tool, --limit)."),
    "demo": ("baton.demo", "Run a short orchestration through a real `baton serve` and print its dashboard."),
    "workflow": ("baton.workflow", "Load or export the routing table used by `route` (load FILE | export)."),
    "import": ("baton.transfer.cli", "Import a BAZINGA database, state files or a session bundle."),
    "export": ("baton.transfer.cli", "Export a session as a portable, versioned bundle."),
    "sync": ("baton.transfer.cli", "Register or update every session bundle found in a directory."),
    "merge": ("baton.transfer.cli", "Fold other Baton or BAZINGA databases into this one."),
    "backup": ("baton.maintenance", "Online, consistent copy of the database."),
    "restore": ("baton.maintenance", "Replace the database with a backup (keeps the replaced file)."),
    "check": ("baton.maintenance", "Integrity and foreign-key checks, schema version, sizes."),
    "prune": ("baton.maintenance", "Delete old sessions' logs (dry run unless --yes)."),
    "vacuum": ("baton.maintenance", "Rebuild the file to reclaim free space."),
    "config": ("baton.client_config", "Client config for this install (claude-code | vscode | copilot | inspector)."),
    "doctor": ("baton.doctor", "Check the install, database and client configs; --find-databases DIR."),
}


def _add_db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db", default=argparse.SUPPRESS,
        help="Database file (default: $BATON_DB, else the user data directory's baton/baton.db).",
    )


class JsonErrorParser(argparse.ArgumentParser):
    """An operation's parser: a mistake in the flags is the same JSON error (exit 2) as any other invalid input,
    with the closest flag suggested, not argparse's usage text."""

    def error(self, message: str) -> NoReturn:
        unknown = re.search(r"unrecognized arguments: (\S+)", message)
        if unknown:
            flags = [flag for action in self._actions for flag in action.option_strings]
            close = difflib.get_close_matches(unknown.group(1).split("=")[0], flags, n=1)
            if close:
                message += f" (did you mean {close[0]}?)"
        sys.exit(_fail(InvalidInput(f"{message}; see `{self.prog} --help`")))


def _operation_parser(op: Operation, prog: str) -> argparse.ArgumentParser:
    parser = JsonErrorParser(prog=f"{prog} {op.name}", description=op.description,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_db_option(parser)
    parser.add_argument("--json", dest="_json", metavar="OBJECT",
                        help="All parameters as one JSON object; @FILE reads it from a file, - from stdin.")
    for name, field in op.input_model.model_fields.items():
        flags = [f"--{name.replace('_', '-')}"] + ([f"--{name}"] if "_" in name else [])
        kind = "JSON" if field_takes_json(field.annotation) else "TEXT"
        parser.add_argument(*flags, dest=name, metavar=kind, default=argparse.SUPPRESS, help=_field_help(field))
    return parser


def _field_help(field: FieldInfo) -> str:
    """The field's description plus what the MCP schema says in keywords: bounds, default, required."""
    notes = ["required"] if field.is_required() else []
    bounds = {k: getattr(m, k) for m in field.metadata for k in ("ge", "le") if getattr(m, k, None) is not None}
    if bounds:
        notes.append(f"{bounds.get('ge', '')}..{bounds.get('le', '')}")
    if field.default is not None and not field.is_required() and isinstance(field.default, (int, str)):
        notes.append(f"default {field.default}")
    return f"{field.description or ''} ({', '.join(notes)})".strip() if notes else field.description or ""


def _arguments(op: Operation, namespace: argparse.Namespace) -> dict[str, Any]:
    values = vars(namespace)
    arguments: dict[str, Any] = {}
    if values.get("_json"):
        text = _json_text(values["_json"])
        try:
            loaded = json.loads(text)
        except ValueError as exc:
            raise InvalidInput(f"--json is not valid JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise InvalidInput("--json must be a JSON object")
        arguments.update(loaded)
    for name, field in op.input_model.model_fields.items():
        if name not in values:
            continue
        raw = values[name]
        if field_takes_json(field.annotation):
            # Not JSON: left as text, and validation says what was expected.
            with contextlib.suppress(ValueError):
                raw = json.loads(raw)
        arguments[name] = raw
    return arguments


def _json_text(value: str) -> str:
    """`--json` inline, `@FILE` or `-` (stdin): a large batch does not fit a command line ("Argument list too long")."""
    if value == "-":
        return sys.stdin.read()
    if value.startswith("@"):
        try:
            return Path(value[1:]).expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"--json {value}: cannot read the file ({exc})") from None
    return value


def _fail(exc: BatonError) -> int:
    print(json.dumps(exc.as_json()), file=sys.stderr)
    return exc.exit_code


def run_operation(op: Operation, argv: Sequence[str], prog: str) -> int:
    import anyio

    from baton.caller import calling, local_caller
    from baton.paths import resolve_db_path
    from baton.store import Store

    namespace = _operation_parser(op, prog).parse_args(argv)
    try:
        arguments = _arguments(op, namespace)
        op.parse(arguments)  # bad input is reported before the database is even opened

        db_path = resolve_db_path(getattr(namespace, "db", None))
        if op.read_only and db_path.parent.is_dir() and not db_path.exists():
            raise NotFound(
                f"no Baton database at {db_path} yet, and {op.name} only reads, so it does not create one: check "
                "--db / BATON_DB, or create it with a write (e.g. `baton create-session`) or `baton serve`"
            )

        async def execute() -> str:
            async with await Store.open(db_path) as store:
                with calling(local_caller("cli"), op.name, arguments):
                    result = await op.run(store, arguments)
            return result.model_dump_json(indent=2 if sys.stdout.isatty() else None)

        output = anyio.run(execute)
    except BatonError as exc:
        return _fail(exc)
    _print_stdout(output)
    return 0


def _print_stdout(text: str) -> None:
    """Print; a reader that went away (`| head`) ends the output quietly instead of with a traceback."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def configure_logging(level: str) -> None:
    """Every log line to stderr: over stdio, stdout is the protocol."""
    logging.basicConfig(stream=sys.stderr, level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _serve_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"{prog} serve", description=COMMANDS["serve"][1])
    _add_db_option(parser)
    parser.add_argument("--tools", default="core", help="core (default), all, or a comma-separated list of tools.")
    # Quiet by default: the Inspector and some clients show a server's stderr inline.
    parser.add_argument("--log-level", default="WARNING", type=str.upper,
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="WARNING (default), or INFO for detail.")
    parser.add_argument("--transport", default="stdio", choices=["stdio", "http"],
                        help="stdio (default) or http (streamable HTTP at /mcp, API keys; see `baton keys`).")
    http = parser.add_argument_group("--transport http")
    http.add_argument("--host", help="Address to bind (default 127.0.0.1; beyond loopback needs --allowed-host).")
    http.add_argument("--port", type=int, help="Port (default 8765).")
    http.add_argument("--workers", type=int, help="Worker processes (default 1).")
    http.add_argument("--allowed-host", action="append", dest="allowed_hosts", metavar="NAME",
                      help="A Host header clients may send, e.g. baton.example.com (repeatable).")
    http.add_argument("--allowed-origin", action="append", dest="allowed_origins", metavar="ORIGIN",
                      help="A browser Origin allowed besides loopback, e.g. https://dash.example.com (repeatable).")
    http.add_argument("--no-auth", action="store_true", help="Serve without API keys (loopback hosts only).")
    return parser


_HTTP_ONLY = {"host": "--host", "port": "--port", "workers": "--workers", "allowed_hosts": "--allowed-host",
              "allowed_origins": "--allowed-origin", "no_auth": "--no-auth"}


def _serve(argv: Sequence[str], prog: str) -> int:
    args = _serve_parser(prog).parse_args(argv)
    configure_logging(args.log_level)
    from baton.paths import resolve_db_path
    from baton.tools import select

    try:
        if args.transport == "stdio":
            given = [flag for name, flag in _HTTP_ONLY.items() if getattr(args, name) not in (None, False)]
            if given:
                raise InvalidInput(f"{', '.join(given)} only applies to --transport http")
        operations = select(args.tools)
        db_path = resolve_db_path(getattr(args, "db", None))
        logging.getLogger("baton").info("database: %s", db_path)
        if args.transport == "http":
            from baton.http_app import HttpSettings, run

            bind = {name: value for name in ("host", "port", "workers") if (value := getattr(args, name)) is not None}
            run(HttpSettings(db_path=str(db_path), tools=args.tools, auth=not args.no_auth, log_level=args.log_level,
                             allowed_hosts=tuple(args.allowed_hosts or ()),
                             allowed_origins=tuple(args.allowed_origins or ()), **bind))
            return 0
        from baton.server import serve

        serve(db_path, operations)
    except BatonError as exc:
        return _fail(exc)
    return 0


def _available(module: str) -> bool:
    from importlib.util import find_spec

    try:
        return find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _top_parser(prog: str, operations: dict[str, Operation]) -> argparse.ArgumentParser:
    lines = [f"  {name:<26} {text}" for name, (module, text) in COMMANDS.items() if _available(module)]
    lines += [f"  {op.name:<26} {op.summary[:90]}" for op in operations.values()]
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Baton: durable shared state for teams of AI coding agents.",
        epilog="commands:\n" + "\n".join(lines) + f"\n\nRun `{prog} COMMAND --help` for a command's parameters.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"baton {__version__}")
    parser.add_argument("command", nargs="?", help="a command from the list below")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    prog = "baton"
    # `baton --db X op ...` (or `--db=X`) is accepted as well as `baton op --db X ...`.
    if args and args[0].startswith("--db="):
        args = [*args[1:], args[0]]
    elif len(args) > 2 and args[0] == "--db":
        args = [*args[2:], "--db", args[1]]
    command = args[0] if args and not args[0].startswith("-") else None
    if command == "serve":
        sys.exit(_serve(args[1:], prog))
    if command in COMMANDS:
        from importlib import import_module

        sys.exit(import_module(COMMANDS[command][0]).main(command, args[1:]))
    from baton.tools import catalog, find

    operation = find(command) if command else None  # imports only this operation's module
    if operation is not None:
        sys.exit(run_operation(operation, args[1:], prog))
    parser = _top_parser(prog, catalog())
    parsed = parser.parse_args(args)
    if parsed.command is None:
        parser.print_help()
        sys.exit(0)
    close = difflib.get_close_matches(parsed.command, [*COMMANDS, *catalog()], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; `{prog} --help` lists the commands"
    sys.exit(_fail(InvalidInput(f"unknown command {parsed.command!r}{hint}")))
