#!/bin/sh
# PostgreSQL's container runs this once, on an empty data directory (compose.yaml): the two
# roles and the database of README "Database roles", then the grants.
set -eu
psql -v ON_ERROR_STOP=1 --username postgres <<SQL
CREATE ROLE osa_owner LOGIN PASSWORD '${OWNER_DB_PASSWORD}';
CREATE ROLE osa_app LOGIN PASSWORD '${APP_DB_PASSWORD}';
CREATE DATABASE osa OWNER osa_owner;
SQL
psql -v ON_ERROR_STOP=1 --username postgres --dbname osa -f /database-roles.sql
