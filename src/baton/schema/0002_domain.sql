-- Baton full-profile domain: context packages, skill outputs, cross-session learning (error
-- patterns, strategies), development plans, workflow routing tables, full-text search.
-- Same rules as 0001: STRICT tables, enum CHECKs written `x IS NULL OR x IN (...)` or NOT NULL,
-- JSON checked with json_valid, UTC ISO-8601 timestamps written by the application, order by id.
-- Session-scoped rows go with their session (ON DELETE CASCADE) so an explicit prune can remove one.

-- -- context engineering --------------------------------------------------------------------

CREATE TABLE context_packages (
    package_id    INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id    TEXT NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
    group_id      TEXT NOT NULL DEFAULT 'global',
    package_type  TEXT NOT NULL CHECK (package_type IN ('research', 'failures', 'decisions', 'handoff', 'investigation')),
    priority      TEXT NOT NULL DEFAULT 'medium' CHECK (priority IN ('low', 'medium', 'high', 'critical')),
    -- 1 low .. 4 critical, kept beside the text so ranking is an indexed integer sort.
    priority_rank INTEGER NOT NULL GENERATED ALWAYS AS
                  (CASE priority WHEN 'critical' THEN 4 WHEN 'high' THEN 3 WHEN 'medium' THEN 2 ELSE 1 END) VIRTUAL,
    producer      TEXT NOT NULL,
    summary       TEXT NOT NULL CHECK (length(summary) > 0),
    content       TEXT,
    file_path     TEXT,
    size_bytes    INTEGER CHECK (size_bytes IS NULL OR size_bytes >= 0),
    version       INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
    supersedes    INTEGER REFERENCES context_packages (package_id),
    superseded_by INTEGER REFERENCES context_packages (package_id),
    redacted      INTEGER NOT NULL DEFAULT 0 CHECK (redacted IN (0, 1)),
    created_at    TEXT NOT NULL,
    CHECK (content IS NOT NULL OR file_path IS NOT NULL)
) STRICT;
CREATE INDEX context_packages_by_session ON context_packages (session_id, group_id, package_id);
-- A package is superseded at most once: versions form a chain, never a fork.
CREATE UNIQUE INDEX context_packages_supersedes ON context_packages (supersedes) WHERE supersedes IS NOT NULL;

CREATE TABLE context_package_consumers (
    package_id  INTEGER NOT NULL REFERENCES context_packages (package_id) ON DELETE CASCADE,
    agent_type  TEXT NOT NULL,
    consumed_at TEXT,
    consumed_by TEXT,
    PRIMARY KEY (package_id, agent_type)
) STRICT, WITHOUT ROWID;
CREATE INDEX context_package_consumers_by_agent ON context_package_consumers (agent_type, package_id);

CREATE TABLE context_consumption (
    consumption_id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id     TEXT NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
    package_id     INTEGER NOT NULL REFERENCES context_packages (package_id) ON DELETE CASCADE,
    agent_type     TEXT NOT NULL,
    agent_id       TEXT,
    group_id       TEXT NOT NULL DEFAULT 'global',
    iteration      INTEGER NOT NULL CHECK (iteration >= 0),
    tokens         INTEGER CHECK (tokens IS NULL OR tokens >= 0),
    consumed_at    TEXT NOT NULL,
    UNIQUE (package_id, agent_type, group_id, iteration)
) STRICT;

-- -- skill outputs --------------------------------------------------------------------------

-- agent_type and group_id are NOT NULL ('' = not given, 'global' = no group) because UNIQUE
-- treats NULLs as distinct: with NULLs, two rows could share an iteration number.
CREATE TABLE skill_outputs (
    output_id  INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
    skill_name TEXT NOT NULL CHECK (length(skill_name) > 0),
    agent_type TEXT NOT NULL DEFAULT '',
    group_id   TEXT NOT NULL DEFAULT 'global',
    iteration  INTEGER NOT NULL CHECK (iteration >= 1),
    output     TEXT NOT NULL CHECK (json_valid(output)),
    redacted   INTEGER NOT NULL DEFAULT 0 CHECK (redacted IN (0, 1)),
    created_at TEXT NOT NULL,
    UNIQUE (session_id, skill_name, agent_type, group_id, iteration)
) STRICT;

-- -- learning across sessions (keyed by project) ----------------------------------------------

CREATE TABLE error_patterns (
    pattern_id         INTEGER PRIMARY KEY AUTOINCREMENT,
    project            TEXT NOT NULL CHECK (length(project) > 0),
    signature          TEXT NOT NULL CHECK (length(signature) = 64),
    normalized_message TEXT NOT NULL,
    example_message    TEXT NOT NULL,
    error_type         TEXT,
    solution           TEXT,
    agent_type         TEXT,
    occurrences        INTEGER NOT NULL DEFAULT 1 CHECK (occurrences >= 1),
    success_count      INTEGER NOT NULL DEFAULT 0 CHECK (success_count >= 0),
    failure_count      INTEGER NOT NULL DEFAULT 0 CHECK (failure_count >= 0),
    confidence         REAL NOT NULL DEFAULT 0.5 CHECK (confidence >= 0.0 AND confidence <= 1.0),
    ttl_days           INTEGER CHECK (ttl_days IS NULL OR ttl_days >= 1),
    redacted           INTEGER NOT NULL DEFAULT 0 CHECK (redacted IN (0, 1)),
    first_seen         TEXT NOT NULL,
    last_seen          TEXT NOT NULL,
    last_session_id    TEXT,
    UNIQUE (project, signature)
) STRICT;

CREATE TABLE strategies (
    strategy_id  INTEGER PRIMARY KEY AUTOINCREMENT,
    project      TEXT NOT NULL CHECK (length(project) > 0),
    topic        TEXT NOT NULL CHECK (length(topic) > 0),
    insight      TEXT NOT NULL CHECK (length(insight) > 0),
    agent_type   TEXT,
    helpfulness  INTEGER NOT NULL DEFAULT 1 CHECK (helpfulness >= 0),
    redacted     INTEGER NOT NULL DEFAULT 0 CHECK (redacted IN (0, 1)),
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    last_session_id TEXT,
    UNIQUE (project, topic)
) STRICT;

-- -- development plans ----------------------------------------------------------------------

CREATE TABLE development_plans (
    plan_id         INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id      TEXT NOT NULL UNIQUE REFERENCES sessions (session_id) ON DELETE CASCADE,
    original_prompt TEXT,
    plan_text       TEXT NOT NULL CHECK (length(plan_text) > 0),
    metadata        TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata) AND json_type(metadata) = 'object'),
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
) STRICT;

-- One row per phase, so two agents updating different phases never touch the same row.
CREATE TABLE plan_phases (
    plan_id      INTEGER NOT NULL REFERENCES development_plans (plan_id) ON DELETE CASCADE,
    phase_number INTEGER NOT NULL CHECK (phase_number >= 1),
    name         TEXT NOT NULL CHECK (length(name) > 0),
    description  TEXT,
    status       TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'in_progress', 'completed', 'blocked', 'skipped')),
    notes        TEXT,
    updated_by   TEXT,
    started_at   TEXT,
    completed_at TEXT,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (plan_id, phase_number),
    UNIQUE (plan_id, name)
) STRICT, WITHOUT ROWID;

-- -- workflow routing -----------------------------------------------------------------------

CREATE TABLE workflow_transitions (
    agent_type      TEXT NOT NULL,
    status          TEXT NOT NULL,
    next_agent      TEXT,
    action          TEXT NOT NULL CHECK (action IN
                    ('spawn', 'respawn', 'spawn_batch', 'spawn_merge', 'validate_then_end', 'pause_for_user',
                     'end_session')),
    include_context TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(include_context) AND json_type(include_context) = 'array'),
    modifiers       TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(modifiers) AND json_type(modifiers) = 'object'),
    source          TEXT NOT NULL DEFAULT 'seed' CHECK (source IN ('seed', 'user')),
    PRIMARY KEY (agent_type, status)
) STRICT, WITHOUT ROWID;

-- agent_type '*' = an alias for every agent.
CREATE TABLE workflow_aliases (
    agent_type TEXT NOT NULL,
    alias      TEXT NOT NULL,
    status     TEXT NOT NULL,
    PRIMARY KEY (agent_type, alias)
) STRICT, WITHOUT ROWID;

CREATE TABLE workflow_special_rules (
    rule_name   TEXT PRIMARY KEY NOT NULL CHECK (rule_name IN
                ('testing_mode', 'escalation_after_failures', 'security_sensitive', 'research_tasks',
                 'iteration_budget_check')),
    description TEXT NOT NULL,
    config      TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(config) AND json_type(config) = 'object'),
    enabled     INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1))
) STRICT, WITHOUT ROWID;

CREATE TABLE agent_markers (
    agent_type TEXT PRIMARY KEY NOT NULL,
    markers    TEXT NOT NULL CHECK (json_valid(markers) AND json_type(markers) = 'array')
) STRICT, WITHOUT ROWID;

-- Every decision route made: the "agent that reported BLOCKED" and the investigation iteration
-- count come from here, so they reflect what happened rather than what a caller says.
CREATE TABLE route_decisions (
    decision_id     INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id      TEXT NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
    group_id        TEXT NOT NULL,
    agent_type      TEXT NOT NULL,
    response_status TEXT NOT NULL,
    next_agent      TEXT,
    action          TEXT NOT NULL,
    rules_applied   TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(rules_applied) AND json_type(rules_applied) = 'array'),
    decided_at      TEXT NOT NULL
) STRICT;
CREATE INDEX route_decisions_by_group ON route_decisions (session_id, group_id, agent_type, decision_id);

-- -- full-text search -----------------------------------------------------------------------

-- One FTS5 index over several sources. rowid = source_id * 4 + source code (1 logs,
-- 2 success_criteria, 3 context_packages), so triggers find a row's entry without a scan.
CREATE VIRTUAL TABLE search_index USING fts5 (
    content,
    kind UNINDEXED,
    session_id UNINDEXED,
    agent_type UNINDEXED,
    group_id UNINDEXED,
    source_id UNINDEXED,
    tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TRIGGER logs_search_insert AFTER INSERT ON logs
WHEN new.log_type IN ('interaction', 'reasoning') AND new.content IS NOT NULL
BEGIN
    INSERT INTO search_index (rowid, content, kind, session_id, agent_type, group_id, source_id)
    VALUES (new.log_id * 4 + 1, new.content, new.log_type, new.session_id, new.agent_type, new.group_id, new.log_id);
END;
CREATE TRIGGER logs_search_update AFTER UPDATE ON logs
BEGIN
    DELETE FROM search_index WHERE rowid = old.log_id * 4 + 1;
    INSERT INTO search_index (rowid, content, kind, session_id, agent_type, group_id, source_id)
    SELECT new.log_id * 4 + 1, new.content, new.log_type, new.session_id, new.agent_type, new.group_id, new.log_id
    WHERE new.log_type IN ('interaction', 'reasoning') AND new.content IS NOT NULL;
END;
CREATE TRIGGER logs_search_delete AFTER DELETE ON logs
BEGIN
    DELETE FROM search_index WHERE rowid = old.log_id * 4 + 1;
END;

CREATE TRIGGER criteria_search_insert AFTER INSERT ON success_criteria
BEGIN
    INSERT INTO search_index (rowid, content, kind, session_id, agent_type, group_id, source_id)
    VALUES (new.criterion_id * 4 + 2, new.criterion || coalesce(char(10) || new.actual, '') || coalesce(char(10) || new.evidence, ''), 'criterion',
            new.session_id, NULL, NULL, new.criterion_id);
END;
CREATE TRIGGER criteria_search_update AFTER UPDATE ON success_criteria
BEGIN
    DELETE FROM search_index WHERE rowid = old.criterion_id * 4 + 2;
    INSERT INTO search_index (rowid, content, kind, session_id, agent_type, group_id, source_id)
    VALUES (new.criterion_id * 4 + 2, new.criterion || coalesce(char(10) || new.actual, '') || coalesce(char(10) || new.evidence, ''), 'criterion',
            new.session_id, NULL, NULL, new.criterion_id);
END;
CREATE TRIGGER criteria_search_delete AFTER DELETE ON success_criteria
BEGIN
    DELETE FROM search_index WHERE rowid = old.criterion_id * 4 + 2;
END;

CREATE TRIGGER packages_search_insert AFTER INSERT ON context_packages
BEGIN
    INSERT INTO search_index (rowid, content, kind, session_id, agent_type, group_id, source_id)
    VALUES (new.package_id * 4 + 3, new.summary, 'context_package', new.session_id, new.producer, new.group_id,
            new.package_id);
END;
CREATE TRIGGER packages_search_update AFTER UPDATE OF summary ON context_packages
BEGIN
    DELETE FROM search_index WHERE rowid = old.package_id * 4 + 3;
    INSERT INTO search_index (rowid, content, kind, session_id, agent_type, group_id, source_id)
    VALUES (new.package_id * 4 + 3, new.summary, 'context_package', new.session_id, new.producer, new.group_id,
            new.package_id);
END;
CREATE TRIGGER packages_search_delete AFTER DELETE ON context_packages
BEGIN
    DELETE FROM search_index WHERE rowid = old.package_id * 4 + 3;
END;

-- Rows written before the index existed (a database migrated from schema 1).
INSERT INTO search_index (rowid, content, kind, session_id, agent_type, group_id, source_id)
SELECT log_id * 4 + 1, content, log_type, session_id, agent_type, group_id, log_id
FROM logs WHERE log_type IN ('interaction', 'reasoning') AND content IS NOT NULL;
INSERT INTO search_index (rowid, content, kind, session_id, agent_type, group_id, source_id)
SELECT criterion_id * 4 + 2, criterion || coalesce(char(10) || actual, '') || coalesce(char(10) || evidence, ''), 'criterion', session_id, NULL, NULL,
       criterion_id
FROM success_criteria;
