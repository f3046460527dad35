"""Session bundles: `baton export`, `baton import bundle`, `baton sync` (being written)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from baton.errors import BatonError
from baton.transfer.report import Report


def run_export(db: Path, args: Any) -> int:
    raise BatonError("export is not implemented yet")


def run_import_bundle(db: Path, args: Any) -> Report:
    raise BatonError("import bundle is not implemented yet")


def run_sync(db: Path, args: Any) -> int:
    raise BatonError("sync is not implemented yet")
