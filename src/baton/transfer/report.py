"""The verification report every transfer command produces: per table, source rows, imported,
skipped with reasons, target rows before and after; plus notes (assumptions, adjustments) and
constraint violations. Printed as a table (rich) or as JSON (`--json`)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO


@dataclass
class TableReport:
    source_table: str
    target_table: str
    source_rows: int = 0
    imported: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    adjusted: Counter[str] = field(default_factory=Counter)
    target_before: int | None = None
    target_after: int | None = None

    def skip(self, reason: str) -> None:
        self.skipped[reason] += 1

    def as_json(self) -> dict[str, Any]:
        return {
            "source_table": self.source_table,
            "target_table": self.target_table,
            "source_rows": self.source_rows,
            "imported": self.imported,
            "skipped": sum(self.skipped.values()),
            "skipped_reasons": dict(sorted(self.skipped.items())),
            "adjusted": dict(sorted(self.adjusted.items())),
            "target_before": self.target_before,
            "target_after": self.target_after,
        }


@dataclass
class Report:
    command: str
    source: str
    target: str
    dry_run: bool
    source_info: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, TableReport] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    violations: list[dict[str, Any]] = field(default_factory=list)
    committed: bool = False

    def table(self, source_table: str, target_table: str) -> TableReport:
        if source_table not in self.tables:
            self.tables[source_table] = TableReport(source_table, target_table)
        return self.tables[source_table]

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def violation(self, table: str, row: str, problem: str, action: str) -> None:
        self.violations.append({"table": table, "row": row, "problem": problem, "action": action})

    @property
    def ok(self) -> bool:
        """Every source row is accounted for: imported or skipped with a reason."""
        return all(t.source_rows == t.imported + sum(t.skipped.values()) for t in self.tables.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "source": self.source,
            "target": self.target,
            "dry_run": self.dry_run,
            "committed": self.committed,
            "source_info": self.source_info,
            "tables": [t.as_json() for t in self.tables.values()],
            "totals": {
                "source_rows": sum(t.source_rows for t in self.tables.values()),
                "imported": sum(t.imported for t in self.tables.values()),
                "skipped": sum(sum(t.skipped.values()) for t in self.tables.values()),
            },
            "violations": self.violations,
            "notes": self.notes,
        }

    def print(self, *, as_json: bool, stream: TextIO | None = None) -> None:
        out = stream or sys.stdout
        if as_json:
            print(json.dumps(self.as_json(), indent=2, ensure_ascii=False), file=out)
            return
        print_text(self, out)


def print_text(report: Report, out: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out, width=max(120, Console(file=out).width), highlight=False, soft_wrap=True)
    mode = "DRY RUN (nothing written)" if report.dry_run else ("committed" if report.committed else "NOT committed")
    console.print(f"{report.command}: {report.source} -> {report.target} [{mode}]", markup=False)
    for key, value in report.source_info.items():
        console.print(f"  {key}: {value}", markup=False)
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for name, justify in (("source table", "left"), ("baton table", "left"), ("source", "right"),
                          ("imported", "right"), ("skipped", "right"), ("target before", "right"),
                          ("target after", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for t in report.tables.values():
        table.add_row(t.source_table, t.target_table, str(t.source_rows), str(t.imported),
                      str(sum(t.skipped.values())), _num(t.target_before), _num(t.target_after))
    console.print(table)
    reasons = [(t.source_table, reason, n) for t in report.tables.values() for reason, n in sorted(t.skipped.items())]
    if reasons:
        console.print("skipped:", markup=False)
        for name, reason, n in reasons:
            console.print(f"  {name}: {n} x {reason}", markup=False)
    adjusted = [(t.source_table, what, n) for t in report.tables.values() for what, n in sorted(t.adjusted.items())]
    if adjusted:
        console.print("adjusted:", markup=False)
        for name, what, n in adjusted:
            console.print(f"  {name}: {n} x {what}", markup=False)
    if report.violations:
        console.print(f"constraint violations ({len(report.violations)}):", markup=False)
        for v in report.violations:
            console.print(f"  {v['table']} {v['row']}: {v['problem']} -> {v['action']}", markup=False)
    for note in report.notes:
        console.print(f"note: {note}", markup=False)


def _num(value: int | None) -> str:
    return "-" if value is None else str(value)


@contextmanager
def progress(total: int, description: str) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr when it is a terminal (never on stdout: that is the output)."""
    if total <= 0 or not sys.stderr.isatty():
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
