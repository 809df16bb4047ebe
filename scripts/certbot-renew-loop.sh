#!/bin/sh
# The certbot service's command in docker compose: renews certificates that are due, twice a day.
#
# Why a loop: the certbot image has no cron, and Let's Encrypt recommends checking twice daily
# (`certbot renew` only renews certificates within 30 days of expiry, so checking often costs
# nothing and leaves plenty of retries before anything expires). Renewal uses the webroot nginx
# serves /.well-known/acme-challenge/ from, so nginx keeps port 80 and nothing stops. nginx picks up a
# renewed certificate through nginx/reload-on-cert-change.sh, which runs in the nginx container:
# certbot's deploy hooks run here, where there is no nginx to reload.
set -eu

usage() {
  cat <<'EOF'
Usage: [ACME_WEBROOT=DIR] [RENEW_INTERVAL=SECONDS] certbot-renew-loop.sh [extra certbot renew options]

Runs `certbot renew --webroot -w ACME_WEBROOT --quiet` now and then every RENEW_INTERVAL seconds.

  ACME_WEBROOT     the directory nginx serves /.well-known/acme-challenge/ from (default: /var/www/certbot)
  RENEW_INTERVAL   seconds between runs (default: 43200, 12 hours)
Extra options go to every `certbot renew` (--config-dir, --server ...).
EOF
}

case "${1:-}" in
  -h | --help) usage; exit 0 ;;
esac

ACME_WEBROOT="${ACME_WEBROOT:-/var/www/certbot}"
RENEW_INTERVAL="${RENEW_INTERVAL:-43200}"
case "$RENEW_INTERVAL" in
  '' | *[!0-9]* | 0) echo "certbot-renew-loop: RENEW_INTERVAL must be a whole number of seconds (1 or more)" >&2; exit 2 ;;
esac

log() { printf 'certbot-renew-loop: %s\n' "$*" >&2; }

# As PID 1 in a container, sh ignores TERM unless it traps it: without this `docker compose stop`
# would wait 10 s and then kill. sleep runs in the background so the trap fires at once.
sleeper=''
trap 'if [ -n "$sleeper" ]; then kill "$sleeper" 2>/dev/null || true; fi; exit 0' TERM INT

mkdir -p "$ACME_WEBROOT"
while :; do
  # A failed run (Let's Encrypt down, rate limit, DNS) is logged and retried at the next interval;
  # the loop itself must not die with it.
  if certbot renew --webroot -w "$ACME_WEBROOT" --quiet "$@"; then
    # One line per run: the container log shows the loop is alive.
    log "renewal check done; next in ${RENEW_INTERVAL}s"
  else
    log "certbot renew failed (exit $?); next attempt in ${RENEW_INTERVAL}s"
  fi
  sleep "$RENEW_INTERVAL" &
  sleeper=$!
  wait "$sleeper" || true
  sleeper=''
done
