-- Baton core schema: sessions, logs (interactions, reasoning, events), task groups, success
-- criteria, state history, token usage, idempotency keys.
-- Rules: every table is STRICT; every enum CHECK is written `x IS NULL OR x IN (...)` (or NOT NULL)
-- so it really rejects bad values; JSON columns are checked with json_valid; timestamps are UTC
-- ISO-8601 with milliseconds and `Z`, written by the application; order is by integer id.

CREATE TABLE sessions (
    session_id     TEXT PRIMARY KEY NOT NULL,
    project        TEXT,
    mode           TEXT NOT NULL DEFAULT 'simple' CHECK (mode IN ('simple', 'parallel')),
    status         TEXT NOT NULL DEFAULT 'active'
                   CHECK (status IN ('active', 'paused', 'completed', 'failed', 'cancelled')),
    status_reason  TEXT,
    requirements   TEXT NOT NULL CHECK (length(requirements) > 0),
    initial_branch TEXT,
    metadata       TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata) AND json_type(metadata) = 'object'),
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    ended_at       TEXT
) STRICT;
-- Sessions are listed newest first by rowid; these indexes carry the rowid implicitly.
CREATE INDEX sessions_by_project ON sessions (project);
CREATE INDEX sessions_by_status ON sessions (status);

CREATE TABLE logs (
    log_id         INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id     TEXT NOT NULL REFERENCES sessions (session_id),
    log_type       TEXT NOT NULL CHECK (log_type IN ('interaction', 'reasoning', 'event')),
    agent_type     TEXT,
    agent_id       TEXT,
    group_id       TEXT,
    iteration      INTEGER CHECK (iteration IS NULL OR iteration >= 0),
    phase          TEXT CHECK (phase IS NULL OR phase IN
                   ('understanding', 'approach', 'decisions', 'risks', 'blockers', 'pivot', 'completion')),
    confidence     TEXT CHECK (confidence IS NULL OR confidence IN ('high', 'medium', 'low')),
    refs           TEXT CHECK (refs IS NULL OR (json_valid(refs) AND json_type(refs) = 'array')),
    event_type     TEXT,
    payload        TEXT CHECK (payload IS NULL OR (json_valid(payload) AND json_type(payload) = 'object')),
    content        TEXT,
    content_length INTEGER NOT NULL DEFAULT 0 CHECK (content_length >= 0),
    redacted       INTEGER NOT NULL DEFAULT 0 CHECK (redacted IN (0, 1)),
    timestamp      TEXT NOT NULL,
    CHECK (log_type <> 'reasoning' OR phase IS NOT NULL),
    CHECK (log_type <> 'event' OR event_type IS NOT NULL),
    CHECK (log_type = 'event' OR (agent_type IS NOT NULL AND content IS NOT NULL))
) STRICT;
CREATE INDEX logs_by_session ON logs (session_id, log_id);
CREATE INDEX logs_by_session_type ON logs (session_id, log_type, log_id);
CREATE INDEX logs_by_session_agent ON logs (session_id, agent_type, log_id);
CREATE INDEX logs_by_session_group ON logs (session_id, group_id, log_id);
CREATE INDEX logs_reasoning_phase ON logs (session_id, log_type, phase);

CREATE TABLE task_groups (
    seq                   INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id            TEXT NOT NULL REFERENCES sessions (session_id),
    group_id              TEXT NOT NULL,
    name                  TEXT NOT NULL CHECK (length(name) > 0),
    status                TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
                          ('pending', 'in_progress', 'approved_pending_merge', 'merging', 'completed', 'failed')),
    assigned_to           TEXT,
    complexity            INTEGER CHECK (complexity IS NULL OR complexity BETWEEN 1 AND 10),
    initial_tier          TEXT CHECK (initial_tier IS NULL OR initial_tier IN ('developer', 'senior_software_engineer')),
    specializations       TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(specializations) AND json_type(specializations) = 'array'),
    item_count            INTEGER CHECK (item_count IS NULL OR item_count >= 0),
    component_path        TEXT,
    security_sensitive    INTEGER NOT NULL DEFAULT 0 CHECK (security_sensitive IN (0, 1)),
    depends_on            TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(depends_on) AND json_type(depends_on) = 'array'),
    review_status         TEXT CHECK (review_status IS NULL OR review_status IN ('approved', 'changes_requested')),
    merge_status          TEXT CHECK (merge_status IS NULL OR merge_status IN
                          ('pending', 'in_progress', 'merged', 'conflict', 'test_failure')),
    feature_branch        TEXT,
    revision_count        INTEGER NOT NULL DEFAULT 0 CHECK (revision_count >= 0),
    qa_attempts           INTEGER NOT NULL DEFAULT 0 CHECK (qa_attempts >= 0),
    tl_review_attempts    INTEGER NOT NULL DEFAULT 0 CHECK (tl_review_attempts >= 0),
    review_iteration      INTEGER NOT NULL DEFAULT 0 CHECK (review_iteration >= 0),
    no_progress_count     INTEGER NOT NULL DEFAULT 0 CHECK (no_progress_count >= 0),
    blocking_issues_count INTEGER NOT NULL DEFAULT 0 CHECK (blocking_issues_count >= 0),
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    UNIQUE (session_id, group_id)
) STRICT;

CREATE TABLE success_criteria (
    criterion_id            INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id              TEXT NOT NULL REFERENCES sessions (session_id),
    criterion               TEXT NOT NULL CHECK (length(criterion) > 0),
    status                  TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'met', 'blocked', 'failed')),
    actual                  TEXT,
    evidence                TEXT,
    required_for_completion INTEGER NOT NULL DEFAULT 1 CHECK (required_for_completion IN (0, 1)),
    created_at              TEXT NOT NULL,
    updated_at              TEXT NOT NULL,
    UNIQUE (session_id, criterion)
) STRICT;

CREATE TABLE state_snapshots (
    snapshot_id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id  TEXT NOT NULL REFERENCES sessions (session_id),
    state_type  TEXT NOT NULL CHECK (state_type IN ('pm', 'orchestrator', 'group_status', 'investigation')),
    group_id    TEXT NOT NULL DEFAULT 'global',
    version     INTEGER NOT NULL CHECK (version >= 1),
    state       TEXT NOT NULL CHECK (json_valid(state) AND json_type(state) = 'object'),
    saved_at    TEXT NOT NULL,
    UNIQUE (session_id, state_type, group_id, version)
) STRICT;

CREATE TABLE token_usage (
    usage_id           INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id         TEXT NOT NULL REFERENCES sessions (session_id),
    agent_type         TEXT NOT NULL,
    agent_id           TEXT,
    group_id           TEXT,
    model              TEXT,
    input_tokens       INTEGER NOT NULL CHECK (input_tokens >= 0),
    output_tokens      INTEGER NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
    cache_read_tokens  INTEGER NOT NULL DEFAULT 0 CHECK (cache_read_tokens >= 0),
    cache_write_tokens INTEGER NOT NULL DEFAULT 0 CHECK (cache_write_tokens >= 0),
    timestamp          TEXT NOT NULL
) STRICT;
CREATE INDEX token_usage_by_session ON token_usage (session_id, usage_id);

-- A retried write with the same key returns the first result instead of writing again.
CREATE TABLE idempotency_keys (
    session_id   TEXT NOT NULL,
    operation    TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    response     TEXT NOT NULL CHECK (json_valid(response)),
    created_at   TEXT NOT NULL,
    PRIMARY KEY (session_id, operation, key)
) STRICT, WITHOUT ROWID;
