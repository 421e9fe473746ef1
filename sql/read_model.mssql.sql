-- SPDX-License-Identifier: Apache-2.0
-- Read model schema for the SQL Server adapter (query-api/rm_mssql.c).
-- rm_mssql_open sends this whole file as one batch on every start, so it
-- must stay idempotent and free of GO separators.
--
-- Portable T-SQL: it runs on SQL Server and on Babelfish (the test server,
-- ../shared/mssql), hence no MERGE and no CREATE OR ALTER. Indexes are
-- created in the same IF block as their table because Babelfish stores
-- index names mangled (sys.indexes shows "ix_post_author<hash>"), so a
-- lookup by name would never find them; a future index needs its own
-- existence check that works on both servers.
--
-- Same tables as sql/read_model.sqlite.sql. PostVersion holds the last event
-- version applied per post and outlives the Post row, so a removed post
-- cannot be brought back by a redelivered old event. Times are UTC,
-- datetime2(3): milliseconds, exactly what the events carry.
--
-- Author is case-insensitive on purpose (queries by author ignore case):
-- the collation is explicit so a database created with a case-sensitive
-- default still behaves. nvarchar(64) because an index key needs a bound
-- (authors are at most 64 bytes of UTF-8, so at most 64 UTF-16 units).
-- AuthorId and UserId are the owner's user id (the token's `sub`), NULL when
-- the event had none; sm_event.h bounds them at 255 bytes of UTF-8, so
-- nvarchar(255) always holds them.

IF OBJECT_ID(N'dbo.Post', N'U') IS NULL
BEGIN
    CREATE TABLE dbo.Post (
        Id         uniqueidentifier NOT NULL CONSTRAINT PK_Post PRIMARY KEY,
        Author     nvarchar(64) COLLATE SQL_Latin1_General_CP1_CI_AS NOT NULL,
        AuthorId   nvarchar(255)    NULL,
        Message    nvarchar(max)    NOT NULL,
        DatePosted datetime2(3)     NOT NULL,
        Likes      int              NOT NULL CONSTRAINT DF_Post_Likes DEFAULT 0,
        Version    bigint           NOT NULL
    );
    CREATE INDEX IX_Post_Author ON dbo.Post (Author);
    CREATE INDEX IX_Post_Order ON dbo.Post (DatePosted DESC, Id);
END;

IF OBJECT_ID(N'dbo.Comment', N'U') IS NULL
BEGIN
    CREATE TABLE dbo.Comment (
        CommentId   uniqueidentifier NOT NULL CONSTRAINT PK_Comment PRIMARY KEY,
        PostId      uniqueidentifier NOT NULL
                    CONSTRAINT FK_Comment_Post REFERENCES dbo.Post (Id) ON DELETE CASCADE,
        Username    nvarchar(64)     NOT NULL,
        UserId      nvarchar(255)    NULL,
        Comment     nvarchar(max)    NOT NULL,
        CommentDate datetime2(3)     NOT NULL,
        Edited      bit              NOT NULL CONSTRAINT DF_Comment_Edited DEFAULT 0,
        EditedAt    datetime2(3)     NULL
    );
    CREATE INDEX IX_Comment_PostId ON dbo.Comment (PostId, CommentDate);
END;

-- Columns added after the first release: a database created before them
-- gets them here, nullable and without a default, so its rows read NULL (an
-- owner nobody recorded). COL_LENGTH is NULL for a missing column on both
-- servers. Nothing later in this batch names them: SQL Server compiles a
-- batch before running it, and a column added by the batch itself would
-- not be known yet.
IF COL_LENGTH(N'dbo.Post', N'AuthorId') IS NULL
    ALTER TABLE dbo.Post ADD AuthorId nvarchar(255) NULL;

IF COL_LENGTH(N'dbo.Comment', N'UserId') IS NULL
    ALTER TABLE dbo.Comment ADD UserId nvarchar(255) NULL;

-- Indexes added after the first release, each found by the start of its
-- name in lower case: SQL Server keeps the name as written, Babelfish as
-- the lower-case name, the table's and a hash ("ix_post_authorpagepost5f..").
-- IX_Post_AuthorPage carries the lists' order after the author, so a page
-- of byAuthor, by offset or by cursor (`after`), is a seek and a walk
-- rather than a sort of all the author's posts. Built once, on the first
-- open by a query-api that has it.
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.Post')
               AND LOWER(name) LIKE N'ix_post_authorpage%')
    CREATE INDEX IX_Post_AuthorPage ON dbo.Post (Author, DatePosted DESC, Id);

IF OBJECT_ID(N'dbo.PostVersion', N'U') IS NULL
    CREATE TABLE dbo.PostVersion (
        PostId  uniqueidentifier NOT NULL CONSTRAINT PK_PostVersion PRIMARY KEY,
        Version bigint           NOT NULL
    );
