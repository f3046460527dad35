"""`baton import files DIR` (being written)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from baton.errors import BatonError
from baton.transfer.report import Report


def run_import_files(db: Path, args: Any) -> Report:
    raise BatonError("import files is not implemented yet")
