-- Team mode: API keys for the HTTP transport, and the audit trail of who wrote what.
-- Same rules as 0001: STRICT tables, CHECKs that reject bad values, UTC ISO-8601 timestamps
-- written by the application.

-- A key is shown once when created and stored only as the SHA-256 of the whole key. Every request
-- reads this table, so a revocation is seen at once by every server process on the database.
-- Keys are revoked, never deleted: an audit row keeps naming the key that made it.
CREATE TABLE api_keys (
    key_id       TEXT PRIMARY KEY NOT NULL CHECK (length(key_id) BETWEEN 4 AND 32),
    key_sha256   TEXT NOT NULL UNIQUE CHECK (length(key_sha256) = 64),
    agent_id     TEXT NOT NULL CHECK (length(agent_id) BETWEEN 1 AND 128),
    scopes       TEXT NOT NULL CHECK (scopes IN ('read', 'read,write')),
    note         TEXT,
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    revoked_at   TEXT,
    last_used_at TEXT
) STRICT;

-- One row per write transaction a tool call (MCP or CLI) committed, written in that transaction.
-- No foreign keys: the trail outlives pruned sessions, and stdio/CLI callers have no key.
CREATE TABLE audit_log (
    audit_id   INTEGER PRIMARY KEY AUTOINCREMENT,
    at         TEXT NOT NULL,
    agent_id   TEXT NOT NULL,
    key_id     TEXT,
    via        TEXT NOT NULL CHECK (via IN ('stdio', 'http', 'cli')),
    tool       TEXT NOT NULL,
    session_id TEXT
) STRICT;
CREATE INDEX audit_log_by_session ON audit_log (session_id, audit_id) WHERE session_id IS NOT NULL;
CREATE INDEX audit_log_by_agent ON audit_log (agent_id, audit_id);
