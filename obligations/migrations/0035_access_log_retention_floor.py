"""The purge function keeps what the installation's retention keeps, not only 30 days: it
refuses any limit newer than osa_access_log_retention() (migrations/_retention.py), which the
owner sets from ACCESS_LOG_RETENTION_DAYS, and refuses everything when that is NULL (0: the
log is kept for ever). Before, the app's role could remove all but the last 30 days."""

import importlib

from django.conf import settings
from django.db import migrations

from obligations.migrations._retention import FLOOR, floor_function_sql

TABLE = "obligations_accesslog"
PURGE = "osa_purge_access_log"
SETTING = "osa.purge_access_log_before"
FLOOR_DAYS = 30


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        (schema,) = cursor.fetchone()
    schema_editor.execute(floor_function_sql(settings.ACCESS_LOG_RETENTION_DAYS), params=None)
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {PURGE}(before timestamptz) RETURNS bigint
        LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp
        SET datestyle = 'ISO, YMD'
        AS $$
        DECLARE
            purged bigint;
            kept interval := "{schema}".{FLOOR}();
        BEGIN
            IF kept IS NULL THEN
                RAISE EXCEPTION 'the access log is kept for ever here: % refused', before
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            kept := greatest(kept, interval '{FLOOR_DAYS} days');
            IF before IS NULL OR before > now() - kept THEN
                RAISE EXCEPTION 'the access log keeps the last %: % refused', kept, before
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            PERFORM set_config('{SETTING}', before::text, true);
            DELETE FROM "{schema}".{TABLE}
                WHERE at < current_setting('{SETTING}')::timestamptz;
            GET DIAGNOSTICS purged = ROW_COUNT;
            PERFORM set_config('{SETTING}', '', true);
            RETURN purged;
        END;
        $$
        """,
        params=None,
    )


def restore(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # 0033's function again (its grants stay: CREATE OR REPLACE keeps them).
    importlib.import_module("obligations.migrations.0033_access_log_retention").create(
        apps, schema_editor
    )
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {FLOOR}()")


class Migration(migrations.Migration):
    dependencies = [("obligations", "0034_two_factor_removed")]

    operations = [migrations.RunPython(create, restore)]
