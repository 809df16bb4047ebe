#!/bin/sh
# Gets the first Let's Encrypt certificate on a fresh server. Run it once, after DNS points at the
# server and ports 80 and 443 are open; renewals then happen by themselves (the certbot service runs
# scripts/certbot-renew-loop.sh, and nginx/reload-on-cert-change.sh reloads nginx when they land).
#
# The chicken-and-egg problem it solves: nginx will not start without a certificate, and Let's
# Encrypt's http-01 challenge needs nginx running on port 80. So:
#   1. a temporary self-signed certificate is put where nginx expects the real one;
#   2. nginx is started (or found running) with it, serving /.well-known/acme-challenge/ from the
#      webroot;
#   3. the temporary certificate is deleted, so certbot can create its own live/<domain>/ there;
#   4. certbot requests the real certificate, writing the challenge into the webroot;
#   5. nginx is reloaded to use it.
# If step 4 fails, the temporary certificate is put back, so nginx still starts after a reboot.
# Running the script again is safe: an existing certificate is kept unless it is due (or FORCE=1).
set -eu

usage() {
  cat <<'EOF'
Usage: [VARIABLE=value ...] scripts/init-letsencrypt.sh [DOMAIN ...]

Requests the first Let's Encrypt certificate for nginx's SERVER_NAME, then reloads nginx.

With docker compose (the defaults), on the server, once DNS points at it and ports 80/443 are open:
  echo 'SERVER_NAME=example.com' >> .env                         # what nginx serves
  docker compose up -d                                           # the whole stack, renewals included
  STAGING=1 EMAIL=you@example.com scripts/init-letsencrypt.sh    # a trial against staging first
  EMAIL=you@example.com scripts/init-letsencrypt.sh              # then the real certificate

What to request:
  SERVER_NAME       the name nginx serves; read from the environment, else from .env (as docker
                    compose does). The certificate is named after it: live/$SERVER_NAME/.
  DOMAIN ...        the names to request; default: $DOMAINS (space- or comma-separated), else
                    SERVER_NAME. The first must be SERVER_NAME. Extra names (www.example.com) are
                    validated over http-01 too, so nginx must answer for them on port 80 — the
                    bundled template answers for SERVER_NAME only: request one name.
                    With no name, or localhost, there is nothing to request: nginx uses a
                    self-signed certificate for localhost, which this script makes sure exists.
  EMAIL             the ACME account's contact (Let's Encrypt no longer sends expiry reminders:
                    monitor the served certificate yourself). Empty registers without
                    an address (allowed, not recommended). Running this script accepts the ACME
                    server's terms of service (https://letsencrypt.org/repository/).
  STAGING=1         Let's Encrypt's staging server: untrusted certificates, generous rate limits.
  ACME_SERVER=URL   any other ACME directory URL (wins over STAGING), e.g. a private CA or pebble.
  FORCE=1           a new certificate even if the current one is not due for renewal. Not needed
                    to switch servers (staging to production): that requests a new one anyway.

Where things are, as the certbot command sees them (the defaults fit the compose services):
  CERTBOT_CONFIG_DIR   certbot's accounts, settings and certificates (/etc/letsencrypt); nginx
                       reads CERTBOT_CONFIG_DIR/live/SERVER_NAME/{fullchain,privkey}.pem
  CERTBOT_WORK_DIR     certbot's working directory (/var/lib/letsencrypt)
  CERTBOT_LOGS_DIR     certbot's logs (/var/log/letsencrypt)
  ACME_WEBROOT         where nginx serves /.well-known/acme-challenge/ from (/var/www/certbot)

How certbot and nginx are reached (defaults: the compose services `certbot` and `nginx`; each value
is a shell command line, run with eval; the test sets them to run everything natively):
  CERTBOT_RUN    a prefix that runs a program where certbot's directories are
                 (default: docker compose run --rm -T --no-deps --entrypoint env certbot)
  NGINX_START    makes sure nginx runs; harmless when it already does
                 (default: docker compose up -d nginx certbot — certbot runs the renewals)
  NGINX_RELOAD   makes nginx load its certificate again
                 (default: docker compose exec -T nginx nginx -s reload)
EOF
}

case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  -*) usage >&2; exit 2 ;;
esac

log() { printf '\n==> %s\n' "$*" >&2; }
fail() { printf 'init-letsencrypt: %s\n' "$*" >&2; exit 1; }

# --- Settings --------------------------------------------------------------------------------------
here="$(cd "$(dirname "$0")" && pwd)"
# The project directory, where docker-compose.yml and .env are, whatever directory this is run from.
cd "$here/.."
# nginx serves SERVER_NAME and reads its certificate from live/$SERVER_NAME/, so the certificate must
# be named after it. docker compose takes SERVER_NAME from the shell or, failing that, from the .env
# file beside docker-compose.yml; this script looks in the same places, in the same order.
if [ -z "${SERVER_NAME:-}" ] && [ -f .env ]; then
  SERVER_NAME="$(sed -n 's/^[[:space:]]*SERVER_NAME[[:space:]]*=[[:space:]]*//p' .env | tail -n 1 | tr -d "\"'\r")"
fi
SERVER_NAME="${SERVER_NAME:-}"
if [ "$#" -gt 0 ]; then
  domains="$*"
else
  domains="${DOMAINS:-$SERVER_NAME}"
fi
# Commas and spaces both separate names (DOMAINS="example.com,www.example.com" is common in .env files).
domains="$(printf '%s' "$domains" | tr ',' ' ')"
EMAIL="${EMAIL:-}"
STAGING="${STAGING:-0}"
ACME_SERVER="${ACME_SERVER:-}"
FORCE="${FORCE:-0}"
CERTBOT_CONFIG_DIR="${CERTBOT_CONFIG_DIR:-/etc/letsencrypt}"
CERTBOT_WORK_DIR="${CERTBOT_WORK_DIR:-/var/lib/letsencrypt}"
CERTBOT_LOGS_DIR="${CERTBOT_LOGS_DIR:-/var/log/letsencrypt}"
ACME_WEBROOT="${ACME_WEBROOT:-/var/www/certbot}"
# -T: no terminal, so the ensure-certificate.sh piped in below reaches the container's stdin.
# --entrypoint env: runs any program in the certbot service's container (with its volumes and
# environment), whatever the service's own command is (the renewal loop).
CERTBOT_RUN="${CERTBOT_RUN:-docker compose run --rm -T --no-deps --entrypoint env certbot}"
# certbot too: nothing depends on it, so starting nginx alone would leave renewals off.
NGINX_START="${NGINX_START:-docker compose up -d nginx certbot}"
NGINX_RELOAD="${NGINX_RELOAD:-docker compose exec -T nginx nginx -s reload}"

ensure_certificate_script="$here/ensure-certificate.sh"
[ -f "$ensure_certificate_script" ] || fail "$ensure_certificate_script is missing"

# Runs a program on certbot's side: `on_certbot_side certbot certonly ...`. The arguments stay
# quoted through eval; only CERTBOT_RUN itself is split into words.
on_certbot_side() { eval "$CERTBOT_RUN"' "$@"'; }

# Creates the temporary self-signed certificate in $1 for $2, unless a certificate is there. The
# script is piped in rather than mounted, so the certbot container needs nothing but its openssl.
ensure_certificate() {
  on_certbot_side CERT_DIR="$1" SERVER_NAME="$2" sh -s <"$ensure_certificate_script"
}

# --- No domain: local use --------------------------------------------------------------------------
# The names are split into words here; with globbing off, a stray `*` stays a `*` (refused below).
set -f
# shellcheck disable=SC2086
set -- $domains
primary="${1:-localhost}"
if [ "$primary" = localhost ]; then
  log "No domain configured: nginx uses a self-signed certificate for localhost"
  ensure_certificate "$CERTBOT_CONFIG_DIR/live/localhost" localhost
  echo "Set SERVER_NAME (or pass the domain) to request a Let's Encrypt certificate." >&2
  exit 0
fi

# Refused here rather than by Let's Encrypt: each failed request counts against its rate limits.
for domain in "$@"; do
  case "$domain" in
    *[!A-Za-z0-9.-]* | .* | *. | *..*)
      fail "'$domain' is not a domain name (wildcards need dns-01, which this setup does not use)" ;;
    localhost | *.localhost | *.local)
      fail "'$domain' is not publicly resolvable, so Let's Encrypt cannot validate it" ;;
    *[!0-9.]*) ;;
    *) fail "'$domain' is an IP address; this setup requests certificates for domain names" ;;
  esac
done

if [ -z "$SERVER_NAME" ]; then
  # For the commands below (docker compose substitutes it into the nginx service); see the reminder
  # at the end.
  SERVER_NAME="$primary"
  server_name_was_set=0
elif [ "$SERVER_NAME" != "$primary" ]; then
  fail "nginx serves SERVER_NAME=$SERVER_NAME, but the certificate would be for $primary: make them the same"
else
  server_name_was_set=1
fi
export SERVER_NAME

# Which ACME server: an explicit URL wins, then staging, then Let's Encrypt's production server.
if [ -n "$ACME_SERVER" ]; then
  server="$ACME_SERVER"
elif [ "$STAGING" = 1 ]; then
  server='https://acme-staging-v02.api.letsencrypt.org/directory'
else
  server='https://acme-v02.api.letsencrypt.org/directory'
fi

live_dir="$CERTBOT_CONFIG_DIR/live/$primary"
renewal_conf="$CERTBOT_CONFIG_DIR/renewal/$primary.conf"

echo "Domains:      $*" >&2
echo "Certificate:  $live_dir" >&2
echo "ACME server:  $server" >&2
echo "E-mail:       ${EMAIL:-(none)}" >&2

# The certbot command of step 4, built now while "$@" still holds the names.
certbot_args=''
for domain in "$@"; do certbot_args="$certbot_args -d $domain"; done
set -- certbot certonly --non-interactive --agree-tos \
  --webroot -w "$ACME_WEBROOT" --cert-name "$primary" \
  --server "$server" \
  --config-dir "$CERTBOT_CONFIG_DIR" --work-dir "$CERTBOT_WORK_DIR" --logs-dir "$CERTBOT_LOGS_DIR"
# shellcheck disable=SC2086 # the validated names: no spaces, no glob characters
set -- "$@" $certbot_args
if [ -n "$EMAIL" ]; then
  set -- "$@" --email "$EMAIL" --no-eff-email
else
  echo "No EMAIL: Let's Encrypt will not be able to warn you if renewals stop working." >&2
  set -- "$@" --register-unsafely-without-email
fi

# --- 1-2. A certificate nginx can start with, and nginx running -----------------------------------
# certbot's own lineage exists when its renewal configuration does: then a certificate from an ACME
# server is already in place and only steps 4-5 run.
if on_certbot_side test -f "$renewal_conf"; then
  has_lineage=1
  previous_server="$(on_certbot_side sed -n 's/^server = //p' "$renewal_conf")"
  if [ "$previous_server" != "$server" ]; then
    # From staging to production, typically: the staging certificate is valid for months, so
    # certbot would keep it; a change of server is the request for a new one. (The other way round,
    # certbot also wants to be told that replacing a trusted certificate is intended.)
    log "The current certificate comes from $previous_server: requesting a new one from $server"
    set -- "$@" --force-renewal --break-my-certs
  elif [ "$FORCE" = 1 ]; then
    set -- "$@" --force-renewal
  else
    # Kept unless due for renewal: a rerun costs no rate limit.
    set -- "$@" --keep-until-expiring
  fi
  log "certbot already manages $primary; making sure nginx runs"
else
  has_lineage=0
  log "Making sure nginx can start: a temporary self-signed certificate in $live_dir"
  ensure_certificate "$live_dir" "$primary"
  log "Starting nginx (unless it runs already)"
fi
eval "$NGINX_START"

# --- 3. Make room for certbot ----------------------------------------------------------------------
# certbot will not create live/<name>/ while that directory exists. Only our own placeholder is
# removed: anything else there is somebody's certificate, which this script does not delete.
if [ "$has_lineage" = 0 ]; then
  log "Deleting the temporary certificate (nginx keeps using it from memory until the reload)"
  # shellcheck disable=SC2016 # $1 belongs to the inner shell
  if ! on_certbot_side sh -c 'openssl x509 -in "$1" -noout -subject | grep -q "Temporary self-signed certificate"' \
    sh "$live_dir/fullchain.pem"; then
    fail "$live_dir holds a certificate that certbot does not manage; move it away and run again"
  fi
  on_certbot_side rm -f -- "$live_dir/fullchain.pem" "$live_dir/privkey.pem"
  on_certbot_side rmdir -- "$live_dir"
fi

# --- 4. The real certificate -----------------------------------------------------------------------
log "Requesting the certificate (http-01 through nginx, files in $ACME_WEBROOT)"
if ! on_certbot_side "$@"; then
  if [ "$has_lineage" = 0 ]; then
    # Without this, nginx would not start again after a reboot: its certificate is gone.
    log "certbot failed: putting the temporary certificate back so nginx can still start"
    ensure_certificate "$live_dir" "$primary" || true
  fi
  fail "certbot could not get a certificate (its log: $CERTBOT_LOGS_DIR/letsencrypt.log). Check that DNS for $primary points here and port 80 is reachable; try STAGING=1 while experimenting (rate limits)."
fi

# --- 5. nginx uses it ------------------------------------------------------------------------------
log "Reloading nginx"
eval "$NGINX_RELOAD"
on_certbot_side openssl x509 -in "$live_dir/fullchain.pem" -noout -subject -issuer -enddate >&2
log "Done. Renewals are automatic (certbot-renew-loop.sh); nginx reloads when they land (reload-on-cert-change.sh)."
if [ "$server_name_was_set" = 0 ]; then
  echo "Now put SERVER_NAME=$primary in .env: without it, the next \`docker compose up\` serves localhost again." >&2
fi
