-- Runs once, when the Postgres volume is created (docker-entrypoint-initdb.d), as the
-- superuser in the POSTGRES_DB database. The schema itself is created by `tge-swarm migrate`
-- (the `migrate` one-shot service): this only prepares what the migrations cannot.

-- Statement statistics for `SELECT * FROM pg_stat_statements ORDER BY total_exec_time DESC`
-- (loaded through shared_preload_libraries on the service's command line).
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;

-- A read-only role for analysts' ad-hoc SQL and dashboards; give it a password and LOGIN to use
-- it: ALTER ROLE tge_readonly WITH LOGIN PASSWORD '...';
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tge_readonly') THEN
        CREATE ROLE tge_readonly NOLOGIN;
    END IF;
END
$$;
DO $$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO tge_readonly', current_database());
END
$$;
GRANT USAGE ON SCHEMA public TO tge_readonly;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO tge_readonly;
