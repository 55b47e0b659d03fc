"""On PostgreSQL, a small organisation's pages read its own rows, not those of a large
organisation on the same installation. The planner sizes a tenant from the column's
statistics only when the query holds the tenant's organisations as values
(`selectors.held_organisations`); given a subquery on the memberships, it took every tenant
to be of average size and walked the large one's register to find the small one's rows."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from obligations.access.models import Role
from tests.bulk import make_register
from tests.conftest import TODAY
from tests.factories import OrganisationFactory, member
from tests.helpers import client_for

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL's planner and its statistics"
)

LARGE, SMALL = 1500, 35


def _obligations_read(sql: str) -> int:
    """How many obligation rows the statement's plan read, run once under EXPLAIN ANALYZE."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
        raw = cursor.fetchone()[0]
    plan = json.loads(raw) if isinstance(raw, str) else raw

    def read(node: dict[str, Any]) -> int:
        own = 0
        if node.get("Relation Name") == "obligations_obligation":
            loops = node["Actual Loops"]
            own = (node["Actual Rows"] + node.get("Rows Removed by Filter", 0)) * loops
        return own + sum(read(child) for child in node.get("Plans", []))

    return read(plan[0]["Plan"])


# ANALYZE is the tables' owner's (in production autovacuum's): committed rows, its login.
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("table_owner")
def test_a_small_organisations_api_page_reads_its_own_obligations(catalogue) -> None:  # type: ignore[no-untyped-def]
    large, small = OrganisationFactory(name="Large"), OrganisationFactory(name="Small")
    # Providers in proportion to obligations, as tenants' registers grow: the planner sizes a
    # tenant by its share of providers.
    make_register(
        organisation=large,
        obligations=LARGE,
        today=TODAY,
        name_prefix="Large",
        services_per_provider=1,
    )
    make_register(organisation=small, obligations=SMALL, today=TODAY, name_prefix="Small")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    client = client_for(member(small, role=Role.MANAGER))

    with CaptureQueriesContext(connection) as captured:
        response = client.get("/api/v1/obligations/")
    assert response.status_code == 200
    assert len(response.json()["results"]) == SMALL
    (page,) = [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].startswith('SELECT "obligations_obligation"."id"') and "LIMIT" in q["sql"]
    ]
    assert _obligations_read(page) <= 2 * SMALL
