from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from baton.store import Store


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "baton.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(db_path)
    try:
        yield opened
    finally:
        await opened.close()
