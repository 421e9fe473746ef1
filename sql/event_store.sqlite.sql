-- Event store schema for the SQLite adapter (command-api/es_sqlite.c).
-- Applied on every start; every statement is idempotent.
--
-- One row per event. `position` is the store-wide commit order used for
-- replay (es_read_all). UNIQUE (aggregate_id, version) is the optimistic
-- concurrency check: two writers can never both store version n of a post.
CREATE TABLE IF NOT EXISTS events (
    position     INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT    NOT NULL UNIQUE,
    aggregate_id TEXT    NOT NULL,
    version      INTEGER NOT NULL CHECK (version >= 0),
    type         TEXT    NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    data         TEXT    NOT NULL, -- the payload as JSON (see docs/api.md, Events)
    UNIQUE (aggregate_id, version)
);
