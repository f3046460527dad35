"""CLI of the transfer commands: `import bazinga|files|bundle`, `export`, `sync`, `merge`.

Each prints its verification report on stdout (a table, or JSON with `--json`); errors go to
stderr as `{"error": {"code", "message"}}` with the usual exit codes; `--strict` turns
constraint violations into an `invalid` error (exit 2) with nothing written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from baton.errors import BatonError, InvalidInput
from baton.paths import resolve_db_path
from baton.transfer.report import Report


def _common(parser: argparse.ArgumentParser, *, writes: bool = True) -> None:
    parser.add_argument("--db", help="Target database (default: $BATON_DB, else the user data directory's baton.db).")
    parser.add_argument("--json", action="store_true", help="Print the report as JSON.")
    if writes:
        parser.add_argument("--dry-run", action="store_true", help="Do everything, then roll back: nothing is written.")
        parser.add_argument("--strict", action="store_true",
                            help="Constraint violations are fatal (nothing is written) instead of reported.")


def _parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"baton {command}")
    if command == "import":
        sub = parser.add_subparsers(dest="kind", required=True)
        p = sub.add_parser("bazinga", help="Import a BAZINGA bazinga.db (schema v15-v19).")
        p.add_argument("path", help="The BAZINGA database file (opened read-only).")
        p.add_argument("--local-offset", metavar="+HH:MM",
                       help="UTC offset of the machine that wrote BAZINGA's local-time values (end_time, "
                            "phase completed_at). Default: inferred per session from its id, else this machine's.")
        p.add_argument("--project",
                       help="Project of the imported sessions (default: the one project the source names).")
        _common(p)
        p = sub.add_parser("files", help="Import a directory of JSON/YAML task and session files.")
        p.add_argument("path", help="Directory (searched recursively for *.json, *.yaml, *.yml).")
        p.add_argument("--session", help="Session for tasks that name none.")
        p.add_argument("--project", help="Project of sessions created by the import.")
        _common(p)
        p = sub.add_parser("bundle", help="Import session bundles (state.json) written by `baton export`.")
        p.add_argument("path", help="A state.json file, a session directory, or a directory of session directories.")
        p.add_argument("--replace", action="store_true",
                       help="Replace a session that already exists with different content (default: report and skip).")
        _common(p)
    elif command == "export":
        parser.add_argument("sessions", nargs="*", metavar="SESSION", help="Session ids to export.")
        parser.add_argument("--all", action="store_true", help="Export every session (or every session of --project).")
        parser.add_argument("--project", help="With --all: only this project's sessions.")
        parser.add_argument("--to", help="A directory (one SESSION/state.json per session) or a .json file "
                                         "(one session). Default: the bundle on stdout.")
        _common(parser, writes=False)
    elif command == "sync":
        parser.add_argument("path", help="Directory of session bundles (*/state.json): the source of truth for them.")
        parser.add_argument("--watch", action="store_true", help="Keep watching the directory and sync changes.")
        parser.add_argument("--interval", type=float, default=2.0, help="Seconds between scans with --watch.")
        _common(parser)
    elif command == "merge":
        parser.add_argument("sources", nargs="+", metavar="DB", help="Baton or BAZINGA databases to fold in.")
        parser.add_argument("--on-conflict", choices=["rename", "skip", "replace"], default="rename",
                            help="A session id that exists with other content that does not continue it (nor "
                                 "it the incoming one): rename the incoming one to ID.m<8 hex of its content hash> "
                                 "(default), skip it, or replace the existing one.")
        parser.add_argument("--local-offset", metavar="+HH:MM", help="As for `import bazinga`.")
        _common(parser)
    return parser


def main(command: str, argv: list[str]) -> int:
    args = _parser(command).parse_args(argv)
    try:
        db = resolve_db_path(args.db)
        if command == "import" and args.kind == "bazinga":
            from baton.transfer.bazinga import run_import_bazinga

            reports = [run_import_bazinga(db, args)]
        elif command == "import" and args.kind == "files":
            from baton.transfer.files import run_import_files

            reports = [run_import_files(db, args)]
        elif command == "import":
            from baton.transfer.bundle import run_import_bundle

            reports = [run_import_bundle(db, args)]
        elif command == "export":
            from baton.transfer.bundle import run_export

            return run_export(db, args)
        elif command == "sync":
            from baton.transfer.bundle import run_sync

            return run_sync(db, args)
        else:
            from baton.transfer.merge import run_merge

            reports = run_merge(db, args)
    except BatonError as exc:
        print(json.dumps(exc.as_json()), file=sys.stderr)
        return exc.exit_code
    return print_reports(reports, as_json=args.json)


def print_reports(reports: list[Report], *, as_json: bool) -> int:
    if as_json:
        data = [r.as_json() for r in reports]
        print(json.dumps(data[0] if len(data) == 1 else data, indent=2, ensure_ascii=False))
    else:
        for report in reports:
            report.print(as_json=False)
    return 0


def finish(report: Report, target: object, *, strict: bool) -> Report:
    """Commit the target transaction, or roll it back on a dry run or a --strict violation."""
    from baton.transfer.common import Target

    assert isinstance(target, Target)
    if strict and report.violations:
        target.finish(commit=False)
        report.print(as_json=True, stream=sys.stderr)
        raise InvalidInput(
            f"--strict: {len(report.violations)} row(s) violate Baton's constraints (first: "
            f"{report.violations[0]['table']} {report.violations[0]['row']}: {report.violations[0]['problem']}); "
            "nothing was written"
        )
    if not report.ok:
        target.finish(commit=False)
        raise BatonError(f"internal: the report does not account for every source row; nothing was written "
                         f"({json.dumps(report.as_json()['tables'])})")
    target.finish(commit=True)
    report.committed = not report.dry_run
    return report


def check_not_same(source: Path, db: Path) -> None:
    if source.resolve() == db.resolve():
        raise InvalidInput(f"{source} is the target database itself; choose another --db")
