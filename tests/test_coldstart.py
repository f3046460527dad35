"""Cold-start and upgrade races migrate exactly once; a newer database is refused and left untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
from stress.coldstart import make_old_database, race, refuse_newer

from baton.errors import SchemaTooNew
from baton.migrations import load_migrations, migrate


@pytest.mark.slow
async def test_simultaneous_cold_start_migrates_exactly_once(tmp_path: Path) -> None:
    """Four servers and two CLIs on a missing database: each migration applied once, all serve, none errors."""
    result = await race(tmp_path / "baton.db", "missing", servers=4, clis=2)
    assert result.errors == []
    assert result.served == 4
    assert dict(result.applied) == {m.name: 1 for m in load_migrations()}
    assert result.schema_matches and result.backups == 0


@pytest.mark.slow
async def test_upgrade_race_migrates_once_backs_up_once_and_keeps_data(tmp_path: Path) -> None:
    """Against a version-1 database with data: pending migrations applied once, one backup, the data kept."""
    db_path = tmp_path / "baton.db"
    make_old_database(db_path)
    result = await race(db_path, "upgrade", servers=4, clis=2)
    assert result.errors == []
    assert dict(result.applied) == {m.name: 1 for m in load_migrations()[1:]}
    assert result.backups == 1 and result.data_kept and result.schema_matches


def test_serve_and_cli_refuse_a_newer_database_without_touching_it(tmp_path: Path) -> None:
    """`baton serve` and the CLI exit with schema_too_new naming the path; the file's bytes are unchanged."""
    refusal = refuse_newer(tmp_path / "baton.db")
    assert refusal.serve_exit == 1 and refusal.serve_error["code"] == "schema_too_new"
    assert str(tmp_path / "baton.db") in refusal.serve_error["message"]
    assert refusal.cli_exit == 1 and refusal.cli_error["code"] == "schema_too_new"
    assert refusal.unchanged


def test_older_migration_set_refuses_a_newer_database(tmp_path: Path) -> None:
    """An older Baton (fewer migrations) opening today's database raises schema_too_new and writes nothing."""
    db_path = tmp_path / "baton.db"
    migrate(db_path)
    before = db_path.read_bytes()
    with pytest.raises(SchemaTooNew, match="was not modified"):
        migrate(db_path, load_migrations()[:1])
    assert db_path.read_bytes() == before
