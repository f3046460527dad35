-- Import fidelity: columns an import from BAZINGA (or from state files) needs so that nothing it
-- carries has to live outside the tables. Additive only (ALTER TABLE ADD COLUMN), so a database
-- migrated from 0003 and a fresh one have the same schema. Same rules as 0001/0002: STRICT
-- tables, CHECKs that reject bad values, JSON checked with json_valid.

-- Free-form fields of a task group that Baton has no column for (BAZINGA's context_references and
-- speckit_task_ids, the extra keys of a state-file task). Always a JSON object.
ALTER TABLE task_groups ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}'
    CHECK (json_valid(metadata) AND json_type(metadata) = 'object');

-- The consumer's iteration in which it consumed the package (BAZINGA records it per consumer);
-- NULL when not known or not consumed yet.
ALTER TABLE context_package_consumers ADD COLUMN iteration INTEGER CHECK (iteration IS NULL OR iteration >= 0);

-- Language / framework a learned pattern or strategy applies to (NULL = any).
ALTER TABLE error_patterns ADD COLUMN lang TEXT CHECK (lang IS NULL OR length(lang) > 0);
ALTER TABLE strategies ADD COLUMN lang TEXT CHECK (lang IS NULL OR length(lang) > 0);
ALTER TABLE strategies ADD COLUMN framework TEXT CHECK (framework IS NULL OR length(framework) > 0);
