"""`baton merge DB...`: fold other Baton or BAZINGA databases into this one.

Each source is opened read-only and merged in its own transaction, in the order given.
- A BAZINGA database goes through exactly the `import bazinga` path (same ledger, so merging it
  twice, or merging it after importing it, imports nothing new).
- A Baton database is read session by session as bundles (see bundle.py). A session id that is
  not in the target is inserted; an identical session is left alone; a copy that continues the
  target's (or that the target's continues: same_session.py) is the same session, and the longer
  one is kept. Any other session with the same id is a conflict, reported with the first
  difference and resolved by `--on-conflict`:
    rename (default): the incoming session becomes `<id>.m<first 8 hex of sha256(bundle)>`, a
      name that depends only on its content, so merging again finds it and does nothing;
    skip: reported and left out;  replace: the incoming session replaces the target's.
  Every conflict is listed in the report (and is fatal with --strict).
- A Baton database's learning (error patterns, strategies) is merged by project: see learning_merge.py.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from baton.errors import InvalidInput
from baton.transfer.bazinga import BazingaImport, Options, count_rows, is_bazinga
from baton.transfer.bundle import CHILDREN, DOMAIN_TABLES, export_session, load_bundle
from baton.transfer.common import Target, open_source, parse_offset, sha256_file
from baton.transfer.learning_merge import merge_learning
from baton.transfer.report import Report, progress


def is_baton(src: sqlite3.Connection) -> bool:
    names = {r[0] for r in src.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    return {"sessions", "logs", "task_groups", "idempotency_keys"} <= names


def run_merge(db: Path, args: Any) -> list[Report]:
    from baton.transfer.cli import check_not_same, finish

    reports = []
    for raw in args.sources:
        path = Path(raw)
        check_not_same(path, db)
        with open_source(path) as src:
            if is_bazinga(src):
                report = Report("merge (bazinga)", str(path), str(db), args.dry_run)
                options = Options(local_offset=parse_offset(args.local_offset) if args.local_offset else None)
                with Target(db, dry_run=args.dry_run) as target, progress(count_rows(src), f"merging {path}") as adv:
                    BazingaImport(src, target, report, path, options, adv).run()
                    reports.append(finish(report, target, strict=args.strict))
            elif is_baton(src):
                reports.append(_merge_baton(src, path, db, args))
            else:
                raise InvalidInput(f"{path} is neither a Baton nor a BAZINGA database")
    return reports


def _merge_baton(src: sqlite3.Connection, path: Path, db: Path, args: Any) -> Report:
    from baton.transfer.cli import finish

    report = Report("merge (baton)", str(path), str(db), args.dry_run)
    report.source_info.update({"kind": "baton", "schema_version": int(src.execute("PRAGMA user_version").fetchone()[0]),
                               "sha256": sha256_file(path)})
    ids = [r[0] for r in src.execute("SELECT session_id FROM sessions ORDER BY rowid")]
    with Target(db, dry_run=args.dry_run) as target:
        for table in ("sessions", *CHILDREN, *DOMAIN_TABLES):
            report.table(table, table).target_before = target.count(table)
        with progress(len(ids), f"merging {path}") as advance:
            for sid in ids:
                outcome = load_bundle(target, export_session(src, sid), report, on_conflict=args.on_conflict,
                                      label=str(path), continued=True)
                report.note(f"{sid}: {outcome}")
                advance(1)
        for table in ("sessions", *CHILDREN, *DOMAIN_TABLES):
            report.table(table, table).target_after = target.count(table)
        merge_learning(src, target, report)
        return finish(report, target, strict=args.strict)
