#!/usr/bin/env bash
# The application's own database login: role `app` (LOGIN, not a superuser, cannot create databases or
# roles) owning database `app`, with the password that scripts/deploy-secrets.ts generated. The app and
# its migrations connect as this role; the `postgres` superuser (POSTGRES_PASSWORD_FILE) is for the
# operator only. So an SQL injection or a stolen DATABASE_URL reaches the app's tables, not the server:
# no COPY ... PROGRAM, no reading files, no other databases, no new roles.
#
# The official postgres image runs this file from /docker-entrypoint-initdb.d/ once, when it creates an
# empty data directory, as the postgres user over the local socket. It is idempotent: run it again to
# apply a rotated password (scripts/deploy-secrets.ts rotate-database-password) or to restore the role:
#   docker compose exec -u postgres postgres /docker-entrypoint-initdb.d/10-app-role.sh
set -euo pipefail

APP_DB_USER="${APP_DB_USER:-app}"
APP_DB_NAME="${APP_DB_NAME:-app}"
APP_DB_PASSWORD_FILE="${APP_DB_PASSWORD_FILE:-/run/secrets/postgres/app_password}"

if [ ! -s "$APP_DB_PASSWORD_FILE" ]; then
  echo "10-app-role: $APP_DB_PASSWORD_FILE is missing or empty (the secrets-init service writes it)" >&2
  exit 1
fi

# The password is read by psql itself (backquotes in \set), so it never appears on a command line, in
# the environment or in this script's output; :'name' and :"name" quote values and identifiers.
psql --no-psqlrc -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
  -v app_user="$APP_DB_USER" -v app_db="$APP_DB_NAME" -v password_file="$APP_DB_PASSWORD_FILE" <<'SQL'
\set app_password `cat :'password_file'`
SELECT format('CREATE ROLE %I', :'app_user')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_user') \gexec
ALTER ROLE :"app_user" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'app_password';
SELECT format('CREATE DATABASE %I OWNER %I', :'app_db', :'app_user')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'app_db') \gexec
ALTER DATABASE :"app_db" OWNER TO :"app_user";
-- Nobody else connects to it. As its owner, `app` owns the public schema too (Postgres 15+), where
-- the migrations create the tables.
REVOKE ALL ON DATABASE :"app_db" FROM PUBLIC;
SQL
echo "10-app-role: role $APP_DB_USER owns database $APP_DB_NAME; password set from $APP_DB_PASSWORD_FILE" >&2
