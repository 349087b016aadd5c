-- Least privilege for a fleet sharing one PostgreSQL database (or Supabase project).
--
-- 1. As the database's owner, once:   eyes-devine db migrate --db postgresql://OWNER:…@HOST/DB
-- 2. Then, as the owner:              psql "postgresql://OWNER:…@HOST/DB" -f examples/postgres/roles.sql
-- 3. Give each role a password:       ALTER ROLE eyes_writer PASSWORD '…';  ALTER ROLE eyes_reader PASSWORD '…';
--
-- The hosts' `eyes-devine run` log in as eyes_writer: they insert, trim their own observer's rows (--keep,
-- --retain) and keep their status row; they create nothing and own nothing.  `requests`, `alerts`, `flows`,
-- `watch --attach` and `health` log in as eyes_reader, which can only read.

CREATE ROLE eyes_writer LOGIN;
CREATE ROLE eyes_reader LOGIN;

GRANT USAGE ON SCHEMA public TO eyes_writer, eyes_reader;
GRANT SELECT ON eyes_devine_schema, exchanges, flows, monitor_status, containers TO eyes_writer, eyes_reader;

-- The writer: rows in, and out again only by the bounds; its batches arrive through a temporary table.  The
-- container inventory's tenures are updated when they end.  (A database these grants were given before schema 3,
-- which added `containers`: run the GRANT lines again, or just the two that name it.)
GRANT INSERT, DELETE ON exchanges, flows TO eyes_writer;
GRANT INSERT, UPDATE, DELETE ON containers TO eyes_writer;
GRANT INSERT, UPDATE ON monitor_status TO eyes_writer;
DO $$ BEGIN EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO eyes_writer', current_database()); END $$;
