-- Run by the mssql-init service as sa, with sqlcmd -b (stop at the first
-- error), on every `docker compose up`. Idempotent: creates the smpost
-- database, the smpost login and its database user when missing, and keeps
-- the login password in step with SMPOST_DB_PASSWORD from compose/.env.
-- The tables are not created here: query-api applies sql/read_model.mssql.sql
-- itself on every start (it owns the schema).
--
-- SMPOST_DB_PASSWORD is a sqlcmd scripting variable (sqlcmd -v), replaced as
-- text: the init service rejects a password holding a quote or a semicolon
-- before this runs (a semicolon because the query-api connection string
-- cannot quote one).

SET NOCOUNT ON;

IF DB_ID(N'smpost') IS NULL
BEGIN
    CREATE DATABASE [smpost];
    PRINT 'created database smpost';
END;
GO

IF SUSER_ID(N'smpost') IS NULL
BEGIN
    -- password policy: SQL Server's default (CHECK_POLICY ON)
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

USE [smpost];
GO

-- (a sysadmin login is dbo in every database and needs no user)
IF USER_ID(N'smpost') IS NULL AND IS_SRVROLEMEMBER(N'sysadmin', N'smpost') = 0
BEGIN
    CREATE USER [smpost] FOR LOGIN [smpost];
    PRINT 'created user smpost in database smpost';
END;
-- db_owner of this database only: query-api creates and evolves its own
-- tables here; the login has no server-level role.
IF USER_ID(N'smpost') IS NOT NULL AND IS_ROLEMEMBER(N'db_owner', N'smpost') = 0
    ALTER ROLE db_owner ADD MEMBER [smpost];
GO

PRINT 'smpost database and login ready';
GO
