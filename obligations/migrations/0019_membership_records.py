from django.db import migrations

# Who had which role when is an audit question (0018). On PostgreSQL the membership events are
# append-only, like the register's events (0010's function), and a membership's end is kept
# like the rest of its record (0016's function): once ended, its role and its end never change.
ENDED = ("role", "ended_at", "ended_by_id")


def create_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "CREATE TRIGGER obligations_membershipevent_append_only BEFORE UPDATE OR DELETE "
        "ON obligations_membershipevent FOR EACH ROW EXECUTE FUNCTION obligations_refuse_rewrite()"
    )
    old = ", ".join(f'OLD."{c}"' for c in ENDED)
    new = ", ".join(f'NEW."{c}"' for c in ENDED)
    watched = ", ".join(f'"{c}"' for c in ENDED)
    schema_editor.execute(
        f"CREATE TRIGGER obligations_membership_end_kept BEFORE UPDATE OF {watched} "
        f"ON obligations_membership FOR EACH ROW "
        f"WHEN (OLD.ended_at IS NOT NULL AND ROW({old}) IS DISTINCT FROM ROW({new})) "
        "EXECUTE FUNCTION obligations_keep_record('an ended membership keeps its role and its end')",
        params=None,
    )


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "DROP TRIGGER IF EXISTS obligations_membership_end_kept ON obligations_membership"
    )
    schema_editor.execute(
        "DROP TRIGGER IF EXISTS obligations_membershipevent_append_only "
        "ON obligations_membershipevent"
    )


class Migration(migrations.Migration):
    dependencies = [("obligations", "0018_memberships_end_never_delete")]

    operations = [migrations.RunPython(create_triggers, drop_triggers)]
