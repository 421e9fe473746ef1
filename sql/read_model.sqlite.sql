-- SPDX-License-Identifier: Apache-2.0
-- Read model schema for the SQLite adapter (query-api/rm_sqlite.c).
-- Applied on every start; every statement is idempotent.
--
-- Post and Comment carry the original's columns (minus its never-written
-- DeletedAt/CreatedBy/UpdatedBy) plus Version, Edited and EditedAt.
-- PostVersion is what idempotency needs: the last event version applied
-- per post. It outlives the Post row, so a removed post cannot be brought
-- back by a redelivered old event. Times are UTC milliseconds.
--
-- Post.AuthorId and Comment.UserId are the owner's user id (the token's
-- `sub`), NULL when the event had none. They came after the first release,
-- and CREATE TABLE IF NOT EXISTS leaves an older file's tables as they are:
-- query-api/rm_sqlite.c adds the columns it finds missing before anything
-- else reads the file (migrate_columns). A column added here later needs an
-- entry in its table there as well.
PRAGMA foreign_keys = ON;

CREATE TABLE IF NOT EXISTS Post (
    Id         TEXT    PRIMARY KEY,
    Author     TEXT    NOT NULL,
    AuthorId   TEXT,
    Message    TEXT    NOT NULL,
    DatePosted INTEGER NOT NULL,
    Likes      INTEGER NOT NULL DEFAULT 0,
    Version    INTEGER NOT NULL
);
-- byAuthor ignores case by Unicode simple case folding (SM_NOCASE, registered
-- by common/sqlite_pool.c), like the command side; the ASCII-only NOCASE
-- index of earlier versions is replaced. The index carries the lists' order
-- after the author, so an author's page, by offset or by cursor (`after`),
-- is a seek and a walk, never a sort of all their posts; it replaces the
-- author-only IX_Post_AuthorFold, which a file opened here loses (the new
-- index is built once, on that open).
DROP INDEX IF EXISTS IX_Post_Author;
DROP INDEX IF EXISTS IX_Post_AuthorFold;
CREATE INDEX IF NOT EXISTS IX_Post_AuthorPage
    ON Post (Author COLLATE SM_NOCASE, DatePosted DESC, Id);
-- The version of the order the SM_NOCASE index was built in
-- (sm_text_ci_version()): a query-api whose order differs runs
-- REINDEX SM_NOCASE when it opens the file (query-api/rm_sqlite.c).
CREATE TABLE IF NOT EXISTS CollationVersion (
    Name    TEXT PRIMARY KEY,
    Version TEXT NOT NULL
);
-- The lists' order: a keyset page (`after`) starts with a seek here.
CREATE INDEX IF NOT EXISTS IX_Post_Order ON Post (DatePosted DESC, Id);

CREATE TABLE IF NOT EXISTS Comment (
    CommentId   TEXT    PRIMARY KEY,
    PostId      TEXT    NOT NULL REFERENCES Post (Id) ON DELETE CASCADE,
    Username    TEXT    NOT NULL,
    UserId      TEXT,
    Comment     TEXT    NOT NULL,
    CommentDate INTEGER NOT NULL,
    Edited      INTEGER NOT NULL DEFAULT 0,
    EditedAt    INTEGER
);
-- A post's comments in their order (CommentDate, CommentId): the newest N
-- inline in a PostEntity and a comment page after a cursor are both a seek
-- and a walk, ties on the millisecond included; its first column also
-- serves the cascade from Post. It replaces the (PostId, CommentDate) index
-- of earlier versions, which a file opened here loses.
DROP INDEX IF EXISTS IX_Comment_PostId;
CREATE INDEX IF NOT EXISTS IX_Comment_PostPage ON Comment (PostId, CommentDate, CommentId);

CREATE TABLE IF NOT EXISTS PostVersion (
    PostId  TEXT    PRIMARY KEY,
    Version INTEGER NOT NULL
);
