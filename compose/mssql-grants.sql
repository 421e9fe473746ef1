-- SPDX-License-Identifier: Apache-2.0
-- Run by the mssql-init service as smpost_migrate, after the schema step
-- (sql/read_model.mssql.sql), in database smpost: the runtime login smpost
-- gets exactly what query-api does with the read model (query-api/rm_mssql.c:
-- parameterised SELECT, INSERT, UPDATE and DELETE through sp_executesql on
-- these three tables), nothing else: no CREATE, ALTER or DROP, no EXECUTE.
--
-- query-api still sends the schema batch at every start. It is idempotent:
-- on a database the migration step brought up to date, each IF finds its
-- table, column or index (the runtime login sees their metadata through
-- these grants) and no DDL runs. A query-api newer than the schema (an
-- added column) would fail at start with a permission error naming the
-- statement: run mssql-init of the same checkout first (`docker compose up`
-- does, before query-api).

GRANT SELECT, INSERT, UPDATE, DELETE ON dbo.Post        TO [smpost];
GRANT SELECT, INSERT, UPDATE, DELETE ON dbo.Comment     TO [smpost];
GRANT SELECT, INSERT, UPDATE, DELETE ON dbo.PostVersion TO [smpost];
GO
PRINT 'smpost: SELECT, INSERT, UPDATE, DELETE on dbo.Post, dbo.Comment, dbo.PostVersion';
GO
