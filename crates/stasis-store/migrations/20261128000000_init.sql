-- Sandbox records and the usage of deleted sandboxes.
--
-- Kept portable to PostgreSQL: times are Unix milliseconds in BIGINT, JSON maps are TEXT,
-- booleans are BOOLEAN (an integer 0/1 in SQLite), no AUTOINCREMENT, no SQLite-only types.
-- Ids are compared byte-wise (SQLite's BINARY collation); a PostgreSQL port must declare
-- `id ... COLLATE "C"` so that pagination keeps the same order.

-- One row per live sandbox (any state, including `killing`).
CREATE TABLE sandboxes (
    id                    TEXT    NOT NULL PRIMARY KEY,
    owner                 TEXT    NOT NULL,
    template              TEXT    NOT NULL,
    alias                 TEXT,
    state                 TEXT    NOT NULL
        CHECK (state IN ('creating', 'running', 'pausing', 'paused', 'resuming', 'killing')),
    cpu_count             BIGINT  NOT NULL CHECK (cpu_count >= 0),
    memory_mb             BIGINT  NOT NULL CHECK (memory_mb >= 0),
    disk_size_mb          BIGINT  NOT NULL CHECK (disk_size_mb >= 0),
    -- JSON object of string to string.
    metadata              TEXT    NOT NULL,
    -- JSON object of string to string.
    env_vars              TEXT    NOT NULL,
    envd_access_token     TEXT    NOT NULL,
    envd_version          TEXT    NOT NULL,
    on_timeout            TEXT    NOT NULL CHECK (on_timeout IN ('kill', 'pause')),
    auto_pause_memory     BOOLEAN NOT NULL,
    auto_resume           BOOLEAN NOT NULL,
    allow_internet_access BOOLEAN,
    -- Any JSON value, as the client sent it.
    network               TEXT,
    created_at            BIGINT  NOT NULL,
    started_at            BIGINT  NOT NULL,
    end_at                BIGINT  NOT NULL,
    state_since           BIGINT  NOT NULL,
    running_ms            BIGINT  NOT NULL,
    paused_ms             BIGINT  NOT NULL
);

-- `list` (every owner: the server's sweeps) and `all`: keyset pagination on (created_at, id).
CREATE INDEX sandboxes_by_created ON sandboxes (created_at, id);
-- `list` of one owner, the API's case.
CREATE INDEX sandboxes_by_owner_created ON sandboxes (owner, created_at, id);
-- `expired`: state = 'running' AND end_at <= now.
CREATE INDEX sandboxes_by_state_end ON sandboxes (state, end_at);
-- `retention_due`: state = 'paused' AND created_at < cutoff.
CREATE INDEX sandboxes_by_state_created ON sandboxes (state, created_at);

-- One row per deleted sandbox: what it used, for usage reports. No primary key on `id`: an
-- id is not reused in practice, but a reuse must not make a delete fail.
CREATE TABLE usage_history (
    id         TEXT   NOT NULL,
    owner      TEXT   NOT NULL,
    running_ms BIGINT NOT NULL,
    paused_ms  BIGINT NOT NULL,
    cpu_count  BIGINT NOT NULL,
    memory_mb  BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    deleted_at BIGINT NOT NULL
);

CREATE INDEX usage_history_by_owner ON usage_history (owner, created_at, id);
