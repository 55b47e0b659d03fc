"""The access log's retention as the database holds it: osa_access_log_retention(), owned by
the tables' owner, says how long the log is kept (NULL: for ever). The purge function
(migration 0034) removes nothing newer, whoever calls it, so the app's role cannot wipe more
of the log than the installation's own setting allows. Only the owner can replace it: the
migrate step does, from ACCESS_LOG_RETENTION_DAYS (`manage.py apply_access_log_retention`).
(Django skips modules of this folder whose names begin with an underscore.)"""

FLOOR = "osa_access_log_retention"


def floor_function_sql(days: int) -> str:
    # PL/pgSQL, which the planner never inlines: the purge function reads the value each time
    # it runs, never one folded into a plan a long-lived session keeps.
    kept = f"interval '{int(days)} days'" if days else "NULL"
    return (
        f"CREATE OR REPLACE FUNCTION {FLOOR}() RETURNS interval LANGUAGE plpgsql STABLE "
        f"AS $$ BEGIN RETURN {kept}; END $$"
    )
