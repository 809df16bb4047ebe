#!/bin/sh
# Reloads nginx when its certificate changes on disk.
#
# Why: nginx reads certificates only at start and on reload. certbot renews in its own container,
# where it cannot signal nginx, so without this a renewed certificate sits unused on disk until the
# old one expires in browsers: the classic Let's Encrypt failure. A watcher inside the nginx
# container needs no Docker socket and no shared PID namespace, and it also picks up a certificate
# replaced by hand. A reload is graceful: open connections finish on the old workers.
#
# In the official nginx image, run it with `sh` before the image's entrypoint (docker-compose.yml's
# nginx entrypoint does): it returns at once and keeps checking in the background. Tests run the same
# script natively with --foreground.
set -eu

usage() {
  cat <<'EOF'
Usage: CERT_DIR=DIR reload-on-cert-change.sh [--foreground]

Every RELOAD_CHECK_INTERVAL seconds, fingerprints DIR/fullchain.pem and DIR/privkey.pem (following
symlinks, as certbot's live/ files are) and reloads nginx when they changed.

  --foreground            keep the loop in this process (default: start it in the background and
                          return, which is what a container entrypoint needs)
  CERT_DIR                the directory nginx reads fullchain.pem and privkey.pem from (required)
  RELOAD_CHECK_INTERVAL   seconds between checks (default: 300)
  NGINX_RELOAD_COMMAND    how to reload (default: nginx -s reload)
EOF
}

foreground=0
case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  --foreground) foreground=1 ;;
  '') ;;
  *) usage >&2; exit 2 ;;
esac

if [ -z "${CERT_DIR:-}" ]; then
  usage >&2
  exit 2
fi
interval="${RELOAD_CHECK_INTERVAL:-300}"
case "$interval" in
  '' | *[!0-9]* | 0) echo "reload-on-cert-change: RELOAD_CHECK_INTERVAL must be a whole number of seconds (1 or more)" >&2; exit 2 ;;
esac
reload_command="${NGINX_RELOAD_COMMAND:-nginx -s reload}"

log() { printf 'reload-on-cert-change: %s\n' "$*" >&2; }

# A checksum of the pair, or nothing while either file is missing (init-letsencrypt.sh deletes the
# temporary certificate just before certbot writes the real one). cat follows symlinks, so a renewal
# (certbot repoints live/ to new archive/ files) changes it. cksum is POSIX (busybox has it too) and
# only has to notice a change, not resist an attacker. The key is included so a key change without a
# new chain is noticed too, and a reload that caught the pair half-replaced is followed by another.
fingerprint() {
  if [ -r "$CERT_DIR/fullchain.pem" ] && [ -r "$CERT_DIR/privkey.pem" ]; then
    cat "$CERT_DIR/fullchain.pem" "$CERT_DIR/privkey.pem" 2>/dev/null | cksum
  fi
}

watch_certificate() {
  # Checked until the process is told to stop; sleep runs in the background so that a TERM is acted
  # on at once instead of after the current sleep (and no orphaned sleep is left behind).
  sleeper=''
  trap 'if [ -n "$sleeper" ]; then kill "$sleeper" 2>/dev/null || true; fi; exit 0' TERM INT HUP
  last="$(fingerprint)"
  log "watching $CERT_DIR every ${interval}s"
  while :; do
    sleep "$interval" &
    sleeper=$!
    wait "$sleeper" || true
    sleeper=''
    current="$(fingerprint)"
    # Missing: wait for the new pair rather than reload into a failing configuration.
    [ -n "$current" ] || continue
    [ "$current" != "$last" ] || continue
    log "certificate in $CERT_DIR changed; reloading nginx"
    # Word splitting is wanted: the command comes with its arguments.
    # shellcheck disable=SC2086
    if $reload_command; then
      last="$current"
    else
      # nginx not started yet, or it refused: the fingerprint is not recorded, so the next check
      # tries again.
      log "reload failed; retrying in ${interval}s"
    fi
  done
}

if [ "$foreground" = 1 ]; then
  watch_certificate
else
  # Detached from the entrypoint's stdin; its output still goes to the container's log.
  watch_certificate </dev/null &
  log "started in the background (pid $!)"
fi
