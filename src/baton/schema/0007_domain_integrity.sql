-- Domain integrity: what a finished session still accepts, and the overrides of the rules that
-- guard starting a task group and completing a session. Additive only (ALTER TABLE ADD COLUMN), so
-- a database migrated from 0006 and a fresh one have the same schema. Same rules as 0001: STRICT
-- tables, CHECKs that reject bad values, JSON checked with json_valid.

-- A log or token record written after its session reached a terminal status: history that arrived
-- late (a slow agent, a hook), kept and told apart from the run itself.
ALTER TABLE logs ADD COLUMN after_end INTEGER NOT NULL DEFAULT 0 CHECK (after_end IN (0, 1));
ALTER TABLE token_usage ADD COLUMN after_end INTEGER NOT NULL DEFAULT 0 CHECK (after_end IN (0, 1));

-- The last time the group was started with force while dependencies were not completed:
-- {"at": time, "blocking": {group_id: status}}. NULL when it never was.
ALTER TABLE task_groups ADD COLUMN forced_start TEXT
    CHECK (forced_start IS NULL OR (json_valid(forced_start) AND json_type(forced_start) = 'object'));

-- 1 when the session was completed with force while required success criteria were unmet (the
-- reason is the session's status_reason).
ALTER TABLE sessions ADD COLUMN completion_forced INTEGER NOT NULL DEFAULT 0 CHECK (completion_forced IN (0, 1));
