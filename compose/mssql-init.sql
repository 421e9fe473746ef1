-- SPDX-License-Identifier: Apache-2.0
-- Run by the mssql-init service as sa, with sqlcmd -b (stop at the first
-- error), on every `docker compose up`, before the schema step. Idempotent:
-- creates the smpost database and two logins when missing, and keeps their
-- passwords in step with the secrets:
--   smpost_migrate  owns the schema: db_owner of database smpost only. Used
--                   by mssql-init alone, to apply sql/read_model.mssql.sql
--                   (the migration step) and mssql-grants.sql. No service
--                   gets its password.
--   smpost          query-api's runtime login: SELECT, INSERT, UPDATE and
--                   DELETE on the read-model tables, granted by
--                   mssql-grants.sql once they exist; no DDL, no other
--                   database, no server role.
-- The passwords are sqlcmd scripting variables taken from the environment
-- (SMPOST_MIGRATE_PASSWORD, SMPOST_DB_PASSWORD: mssql-init reads them from
-- the secrets mssql_migrate_password and mssql_smpost_password), replaced as
-- text: mssql-init rejects a password holding a quote or a semicolon before
-- this runs (a semicolon because query-api's connection string cannot quote
-- one).

SET NOCOUNT ON;

IF DB_ID(N'smpost') IS NULL
BEGIN
    CREATE DATABASE [smpost];
    PRINT 'created database smpost';
END;
GO

IF SUSER_ID(N'smpost_migrate') IS NULL
BEGIN
    -- password policy: SQL Server's default (CHECK_POLICY ON)
    CREATE LOGIN [smpost_migrate] WITH PASSWORD = N'$(SMPOST_MIGRATE_PASSWORD)',
        DEFAULT_DATABASE = [smpost];
    PRINT 'created login smpost_migrate';
END
ELSE
BEGIN
    DECLARE @hash varbinary(256) =
        (SELECT password_hash FROM sys.sql_logins WHERE name = N'smpost_migrate');
    IF @hash IS NULL OR PWDCOMPARE(N'$(SMPOST_MIGRATE_PASSWORD)', @hash) = 0
    BEGIN
        ALTER LOGIN [smpost_migrate] WITH PASSWORD = N'$(SMPOST_MIGRATE_PASSWORD)';
        PRINT 'updated the password of login smpost_migrate';
    END;
    ALTER LOGIN [smpost_migrate] ENABLE;
END;
GO

IF SUSER_ID(N'smpost') IS NULL
BEGIN
    CREATE LOGIN [smpost] WITH PASSWORD = N'$(SMPOST_DB_PASSWORD)',
        DEFAULT_DATABASE = [smpost];
    PRINT 'created login smpost';
END
ELSE
BEGIN
    DECLARE @hash varbinary(256) =
        (SELECT password_hash FROM sys.sql_logins WHERE name = N'smpost');
    IF @hash IS NULL OR PWDCOMPARE(N'$(SMPOST_DB_PASSWORD)', @hash) = 0
    BEGIN
        ALTER LOGIN [smpost] WITH PASSWORD = N'$(SMPOST_DB_PASSWORD)';
        PRINT 'updated the password of login smpost';
    END;
    ALTER LOGIN [smpost] ENABLE;
END;
GO

-- Neither login may hold a server role (a stack upgraded from the earlier
-- one, where smpost was db_owner, is brought down to the rights below).
IF IS_SRVROLEMEMBER(N'sysadmin', N'smpost') = 1
    ALTER SERVER ROLE sysadmin DROP MEMBER [smpost];
IF IS_SRVROLEMEMBER(N'sysadmin', N'smpost_migrate') = 1
    ALTER SERVER ROLE sysadmin DROP MEMBER [smpost_migrate];
GO

USE [smpost];
GO

IF USER_ID(N'smpost_migrate') IS NULL
BEGIN
    CREATE USER [smpost_migrate] FOR LOGIN [smpost_migrate];
    PRINT 'created user smpost_migrate in database smpost';
END;
IF IS_ROLEMEMBER(N'db_owner', N'smpost_migrate') = 0
    ALTER ROLE db_owner ADD MEMBER [smpost_migrate];

IF USER_ID(N'smpost') IS NULL
BEGIN
    CREATE USER [smpost] FOR LOGIN [smpost];
    PRINT 'created user smpost in database smpost';
END;
-- The runtime user is in no database role: only the grants of
-- mssql-grants.sql.
IF IS_ROLEMEMBER(N'db_owner', N'smpost') = 1
    ALTER ROLE db_owner DROP MEMBER [smpost];
IF IS_ROLEMEMBER(N'db_ddladmin', N'smpost') = 1
    ALTER ROLE db_ddladmin DROP MEMBER [smpost];
GO

PRINT 'smpost database and logins ready';
GO
