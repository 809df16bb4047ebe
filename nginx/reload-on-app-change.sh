#!/bin/sh
# Reloads nginx when the addresses behind the app's name change.
#
# Why: nginx resolves the names of an `upstream` block when it starts or reloads, and keeps those
# addresses. Under Docker Compose `app` is one name for every replica: `docker compose up --scale
# app=3` adds addresses, a recreated container (a new image, `docker compose up` after a change) gets a
# new one, and nginx would go on sending requests to the old ones. nginx 1.27.3 and later can
# re-resolve by themselves (`server ... resolve`), but the nginx this project is tested on does not
# have it (ADR 0022); a reload works on every version, and is graceful: open connections finish on the
# old workers.
#
# In the official nginx image, run it with `sh` before the image's entrypoint (docker-compose.yml's
# nginx entrypoint does): it returns at once and keeps checking in the background.
set -eu

usage() {
  cat <<'EOF'
Usage: APP_UPSTREAM=NAME:PORT reload-on-app-change.sh [--foreground]

Every APP_CHECK_INTERVAL seconds, looks up the addresses of NAME and reloads nginx when the set
changed (and is not empty).

  --foreground         keep the loop in this process (default: start it in the background and
                       return, which is what a container entrypoint needs)
  APP_UPSTREAM         the app's host:port, as the nginx template gets it (required)
  APP_CHECK_INTERVAL   seconds between checks (default: 5)
  APP_LOOKUP_COMMAND   prints the addresses of the name given as its argument, first word of each
                       line (default: getent ahosts)
  NGINX_RELOAD_COMMAND how to reload (default: nginx -t, then nginx -s reload)
EOF
}

foreground=0
case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  --foreground) foreground=1 ;;
  '') ;;
  *) usage >&2; exit 2 ;;
esac

if [ -z "${APP_UPSTREAM:-}" ]; then
  usage >&2
  exit 2
fi
name="${APP_UPSTREAM%:*}"
interval="${APP_CHECK_INTERVAL:-5}"
case "$interval" in
  '' | *[!0-9]* | 0) echo "reload-on-app-change: APP_CHECK_INTERVAL must be a whole number of seconds (1 or more)" >&2; exit 2 ;;
esac
lookup_command="${APP_LOOKUP_COMMAND:-getent ahosts}"
# `nginx -s reload` succeeds once the signal is sent, even when the master then refuses the new
# configuration (an upstream name that resolves to nothing at that moment) and keeps the old addresses.
# Testing the configuration first, with the same lookups, makes that a failed reload, which the loop
# tries again at the next check instead of recording the new set as served.
reload_nginx() { nginx -t -q && nginx -s reload; }
reload_command="${NGINX_RELOAD_COMMAND:-reload_nginx}"

log() { printf 'reload-on-app-change: %s\n' "$*" >&2; }

# The sorted set of addresses, on one line; nothing while the name does not resolve (getent prints one
# line per address and socket type, hence the dedup).
addresses() {
  # Word splitting is wanted: the command comes with its arguments.
  # shellcheck disable=SC2086
  $lookup_command "$name" 2>/dev/null | awk '{ print $1 }' | sort -u | tr '\n' ' ' | sed 's/ $//' || true
}

watch_addresses() {
  # As in reload-on-cert-change.sh: sleep in the background so that a TERM is acted on at once.
  sleeper=''
  trap 'if [ -n "$sleeper" ]; then kill "$sleeper" 2>/dev/null || true; fi; exit 0' TERM INT HUP
  last="$(addresses)"
  log "watching the addresses of $name every ${interval}s: ${last:-none yet}"
  while :; do
    sleep "$interval" &
    sleeper=$!
    wait "$sleeper" || true
    sleeper=''
    current="$(addresses)"
    # Empty: every replica is gone for a moment (a recreate). nginx keeps the last addresses rather
    # than reload into a name it cannot resolve, which it would refuse anyway.
    [ -n "$current" ] || continue
    [ "$current" != "$last" ] || continue
    log "$name is now $current (was ${last:-none}); reloading nginx"
    # shellcheck disable=SC2086
    if $reload_command; then
      last="$current"
    else
      # nginx not started yet, or it refused: not recorded, so the next check tries again.
      log "reload failed; retrying in ${interval}s"
    fi
  done
}

if [ "$foreground" = 1 ]; then
  watch_addresses
else
  # Detached from the entrypoint's stdin; its output still goes to the container's log.
  watch_addresses </dev/null &
  log "started in the background (pid $!)"
fi
