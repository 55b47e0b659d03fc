"""Access-log retention (obligations/access/retention.py): the one way to delete from the
append-only access log, and the nightly task that uses it.

On PostgreSQL the access log's trigger (0010) refused every UPDATE and DELETE. It now lets a
DELETE through only when the statement runs as the table's owner (current_user: the app's role
is not, README "Database roles") and the row is older than what osa_purge_access_log was asked
to remove; that function runs as the owner (SECURITY DEFINER) and refuses anything from the
last 30 days. So the app's role can delete old rows through the function and nothing else:
a DELETE of its own runs as itself and is refused, and setting the transaction's purge limit
by hand gains it nothing. The owner could always switch the trigger off; it still can.
"""

from django.db import migrations

from obligations.migrations._beat import nightly

TABLE = "obligations_accesslog"
TRIGGER = f"{TABLE}_append_only"
KEEP = "obligations_accesslog_keep"
PURGE = "osa_purge_access_log"
SETTING = "osa.purge_access_log_before"
FLOOR_DAYS = 30  # retention.MIN_RETENTION_DAYS


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        (schema,) = cursor.fetchone()
    table = f'"{schema}".{TABLE}'
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {KEEP}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE'
                AND current_user = (SELECT pg_get_userbyid(relowner) FROM pg_class
                                    WHERE oid = TG_RELID)
                AND OLD.at < nullif(current_setting('{SETTING}', true), '')::timestamptz
            THEN
                RETURN OLD;
            END IF;
            RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END;
        $$
        """,
        params=None,  # no parameters: the % in RAISE are PL/pgSQL's, not placeholders
    )
    schema_editor.execute(f"DROP TRIGGER {TRIGGER} ON {TABLE}")
    schema_editor.execute(
        f"CREATE TRIGGER {TRIGGER} BEFORE UPDATE OR DELETE ON {TABLE} "
        f"FOR EACH ROW EXECUTE FUNCTION {KEEP}()"
    )
    # DateStyle pinned: the limit is written and read back as text within one call.
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {PURGE}(before timestamptz) RETURNS bigint
        LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp
        SET datestyle = 'ISO, YMD'
        AS $$
        DECLARE
            purged bigint;
        BEGIN
            IF before IS NULL OR before > now() - interval '{FLOOR_DAYS} days' THEN
                RAISE EXCEPTION 'the access log keeps the last {FLOOR_DAYS} days: % refused', before
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            PERFORM set_config('{SETTING}', before::text, true);
            DELETE FROM {table}
                WHERE at < current_setting('{SETTING}')::timestamptz;
            GET DIAGNOSTICS purged = ROW_COUNT;
            PERFORM set_config('{SETTING}', '', true);
            RETURN purged;
        END;
        $$
        """,
        params=None,
    )
    # Only the roles that write the access log (the app's: tracker/database-roles.sql gives
    # it EXECUTE on the owner's new functions too) may call it, not every role (PUBLIC).
    schema_editor.execute(f"REVOKE ALL ON FUNCTION {PURGE}(timestamptz) FROM PUBLIC")
    schema_editor.execute(
        f"""
        DO $$
        DECLARE
            writer name;
        BEGIN
            FOR writer IN
                SELECT DISTINCT pg_get_userbyid(acl.grantee)
                FROM pg_class, aclexplode(relacl) AS acl
                WHERE pg_class.oid = '{table}'::regclass AND acl.privilege_type = 'INSERT'
                    AND acl.grantee <> 0 AND acl.grantee <> relowner
            LOOP
                EXECUTE format('GRANT EXECUTE ON FUNCTION {PURGE}(timestamptz) TO %I', writer);
            END LOOP;
        END;
        $$
        """,
        params=None,
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {PURGE}(timestamptz)")
    schema_editor.execute(f"DROP TRIGGER {TRIGGER} ON {TABLE}")
    schema_editor.execute(
        f"CREATE TRIGGER {TRIGGER} BEFORE UPDATE OR DELETE ON {TABLE} "
        "FOR EACH ROW EXECUTE FUNCTION obligations_refuse_rewrite()"
    )
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {KEEP}()")


schedule, unschedule = nightly(
    "Access log retention",
    "obligations.purge_access_log",
    hour="3",
    minute="30",
    description="Removes access log rows older than ACCESS_LOG_RETENTION_DAYS (none when it "
    "is 0), and records how many. Safe to run twice.",
)


class Migration(migrations.Migration):
    dependencies = [
        ("obligations", "0032_access_actions"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.RunPython(create, drop),
        migrations.RunPython(schedule, unschedule),
    ]
