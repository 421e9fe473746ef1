-- SPDX-License-Identifier: Apache-2.0
-- Event store schema for the SQLite adapter (command-api/es_sqlite.c).
-- Applied on every start; every statement is idempotent.
--
-- One row per event. `position` is the store-wide commit order used for
-- replay (es_read_all). UNIQUE (aggregate_id, version) is the optimistic
-- concurrency check: two writers can never both store version n of a post.
-- `published` is the outbox flag: 0 until the relay's Kafka delivery was
-- confirmed.
CREATE TABLE IF NOT EXISTS events (
    position     INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT    NOT NULL UNIQUE,
    aggregate_id TEXT    NOT NULL,
    version      INTEGER NOT NULL CHECK (version >= 0),
    type         TEXT    NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    data         TEXT    NOT NULL, -- the payload as JSON (see docs/api.md, Events)
    published    INTEGER NOT NULL DEFAULT 0,
    -- the envelope's "metadata" as JSON ({"userId","requestId","traceparent"});
    -- NULL for events stored before it existed. Files created before it get
    -- the column from es_sqlite.c at open (ALTER TABLE cannot be written
    -- idempotently here).
    metadata     TEXT,
    UNIQUE (aggregate_id, version)
);

-- The relay's work list: only unpublished rows are indexed, so finding the
-- next event of each post costs nothing once the outbox has drained.
CREATE INDEX IF NOT EXISTS events_unpublished
    ON events (aggregate_id, version) WHERE published = 0;

-- The relay's pages (event_store.h, "Outbox"): the unpublished rows in
-- position order, so a page after a cursor reads only rows still to publish
-- and a pass over a backlog is linear in its size. Files from before it get
-- it here at open, built once from the rows with published = 0.
CREATE INDEX IF NOT EXISTS events_outbox
    ON events (position) WHERE published = 0;

-- Settings the store keeps about itself (e.g. the Kafka cluster id the
-- relay published to).
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Snapshots of aggregate state (see event_store.h, "Snapshots"): a cache
-- beside the events, keyed by the version they were taken at and by the
-- schema of their encoding, so code that reads schema N never sees N-1.
-- Deleting rows here is always safe.
CREATE TABLE IF NOT EXISTS snapshots (
    aggregate_id TEXT    NOT NULL,
    schema       INTEGER NOT NULL,
    version      INTEGER NOT NULL CHECK (version >= 0),
    data         TEXT    NOT NULL,
    PRIMARY KEY (aggregate_id, schema, version)
) WITHOUT ROWID;

-- Leases (see event_store.h, "Leases"): one row per named lease, e.g. the
-- outbox relay's leader among the command-api processes sharing this file.
CREATE TABLE IF NOT EXISTS leases (
    name       TEXT    PRIMARY KEY,
    owner      TEXT    NOT NULL,
    epoch      INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
);
