"""Moving in and out: imports (BAZINGA databases, state files, session bundles), export, sync, merge.

Every command here follows the same rules (README "Moving in"):
- a source is opened read-only and never modified (`mode=ro`, `immutable=1` when no WAL is live);
- the target change is one `BEGIN IMMEDIATE` transaction (all or nothing); `--dry-run` runs the
  very same code and rolls back (on a copy when the target is missing or needs migrating);
- every run produces a per-table verification report (source rows, imported, skipped with
  reasons, target rows before and after), printed as a table or as JSON (`--json`);
- re-running is idempotent: each imported source row is recorded once in an import ledger
  (rows of `idempotency_keys` with operation `import-<kind>`), so a second run imports nothing.
"""
