-- The tracker's two PostgreSQL roles (README, "Database roles"): osa_owner owns the tables
-- and runs the migrations, nothing else; osa_app is what the web, the workers and beat log
-- in as. osa_app reads and writes rows and nothing more: it owns no table, so it cannot
-- alter, disable or drop the triggers that keep the record, and it has no TRUNCATE and no
-- TRIGGER. It may call the owner's functions: the one that deletes access-log rows (migration
-- 0033) refuses recent rows whoever calls it. Run as a superuser, connected to the tracker's
-- database, once the roles exist.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO osa_owner;
GRANT USAGE ON SCHEMA public TO osa_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO osa_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO osa_app;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO osa_app;
-- Tables, sequences and functions the owner's later migrations create get the same grants.
ALTER DEFAULT PRIVILEGES FOR ROLE osa_owner IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO osa_app;
ALTER DEFAULT PRIVILEGES FOR ROLE osa_owner IN SCHEMA public
    GRANT USAGE ON SEQUENCES TO osa_app;
ALTER DEFAULT PRIVILEGES FOR ROLE osa_owner IN SCHEMA public
    GRANT EXECUTE ON FUNCTIONS TO osa_app;
