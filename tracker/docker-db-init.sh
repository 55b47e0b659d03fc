#!/bin/sh
# PostgreSQL's container runs this once, on an empty data directory (compose.yaml): the two
# roles and the database of README "Database roles", then the grants. The passwords go in as
# psql variables, quoted by psql, so no character in them can break or change the SQL.
set -eu
psql -v ON_ERROR_STOP=1 --username postgres \
  -v owner_password="$OWNER_DB_PASSWORD" -v app_password="$APP_DB_PASSWORD" <<'SQL'
CREATE ROLE osa_owner LOGIN PASSWORD :'owner_password';
CREATE ROLE osa_app LOGIN PASSWORD :'app_password';
CREATE DATABASE osa OWNER osa_owner;
SQL
psql -v ON_ERROR_STOP=1 --username postgres --dbname osa -f /database-roles.sql
