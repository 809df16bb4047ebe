#!/usr/bin/env bash
# The parts of the official postgres entrypoint this project relies on, written from its documentation:
# NAME and NAME_FILE variables, a database created on an empty PGDATA with the superuser's password,
# /docker-entrypoint-initdb.d run once against a server that listens on its socket only, password
# authentication over TCP, and the server run as the postgres user.
set -Eeuo pipefail

log() { printf 'docker-entrypoint: %s\n' "$*" >&2; }

# NAME from NAME or from the file NAME_FILE names, never both.
file_env() {
  local name="$1" default="${2:-}" file_name="${1}_FILE"
  if [ -n "${!name:-}" ] && [ -n "${!file_name:-}" ]; then
    log "both $name and $file_name are set (but are exclusive)"
    exit 1
  fi
  local value="$default"
  if [ -n "${!name:-}" ]; then
    value="${!name}"
  elif [ -n "${!file_name:-}" ]; then
    value="$(<"${!file_name}")"
  fi
  export "$name"="$value"
  unset "$file_name"
}

if [ "${1:0:1}" = '-' ]; then
  set -- postgres "$@"
fi

if [ "$1" = postgres ]; then
  if [ "$(id -u)" = 0 ]; then
    # Root only to hand the data directory to postgres, then the same script again as postgres.
    mkdir -p "$PGDATA"
    chmod 0700 "$PGDATA"
    chown postgres:postgres /var/lib/postgresql "$(dirname "$PGDATA")"
    find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
    exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
  fi

  # Started as postgres or any other user (--user): no chown, but PGDATA must exist and be private.
  mkdir -p "$PGDATA"
  chmod 0700 "$PGDATA" || true

  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    file_env POSTGRES_PASSWORD
    file_env POSTGRES_USER postgres
    file_env POSTGRES_DB "$POSTGRES_USER"
    file_env POSTGRES_INITDB_ARGS
    if [ -z "$POSTGRES_PASSWORD" ] && [ "${POSTGRES_HOST_AUTH_METHOD:-}" != trust ]; then
      log 'the superuser has no password: set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE'
      exit 1
    fi
    # shellcheck disable=SC2086 # options, split on purpose
    initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") $POSTGRES_INITDB_ARGS
    method="${POSTGRES_HOST_AUTH_METHOD:-$(postgres -C password_encryption)}"
    printf '\nhost all all all %s\n' "$method" >>"$PGDATA/pg_hba.conf"

    # The first start: nothing but the local socket until the init scripts are done.
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p ${PGPORT:-5432}" -w start
    psql=(psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname postgres)
    if [ "$POSTGRES_DB" != postgres ]; then
      "${psql[@]}" -v db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
    fi
    for f in /docker-entrypoint-initdb.d/*; do
      case "$f" in
        *.sh)
          if [ -x "$f" ]; then
            log "running $f"
            "$f"
          else
            log "sourcing $f"
            # shellcheck disable=SC1090
            . "$f"
          fi
          ;;
        *.sql) log "running $f"; "${psql[@]}" --dbname "$POSTGRES_DB" -f "$f" ;;
        *.sql.gz) log "running $f"; gunzip -c "$f" | "${psql[@]}" --dbname "$POSTGRES_DB" ;;
        */\*) ;;
        *) log "ignoring $f" ;;
      esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop
    log 'initialisation complete; starting the server'
  fi
fi

exec "$@"
