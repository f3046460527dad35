"""`baton merge DB...` (being written)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from baton.errors import BatonError
from baton.transfer.report import Report


def run_merge(db: Path, args: Any) -> list[Report]:
    raise BatonError("merge is not implemented yet")
