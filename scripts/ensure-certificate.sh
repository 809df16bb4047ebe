#!/bin/sh
# Makes sure nginx has a certificate to start with: when $CERT_DIR holds no fullchain.pem/privkey.pem,
# writes a temporary self-signed one there (ECDSA P-256, SAN = $SERVER_NAME, 30 days).
#
# Why: nginx refuses to start when a certificate named in its config is missing, and on a fresh
# server the real one can only be obtained once nginx answers Let's Encrypt's http-01 challenge on
# port 80. So nginx starts with this placeholder, and scripts/init-letsencrypt.sh replaces it. For
# local use (SERVER_NAME=localhost) the placeholder simply stays: browsers warn, nothing else breaks.
#
# Idempotent and safe to run on every start: an existing certificate is never touched (in
# particular certbot's, whose live/ files are symlinks into archive/). The one exception is our own
# placeholder when it is about to expire, which is replaced by a fresh one (long-lived local setups).
set -eu

usage() {
  cat <<'EOF'
Usage: [SERVER_NAME=example.com] [CERT_DIR=DIR] ensure-certificate.sh

Creates a temporary self-signed certificate (DIR/fullchain.pem, DIR/privkey.pem) unless one exists.

  SERVER_NAME       the name the certificate is for (default: localhost; localhost also gets
                    127.0.0.1 and ::1; an IP address gets an IP entry)
  CERT_DIR          where nginx reads the certificate (default: /etc/letsencrypt/live/$SERVER_NAME,
                    the directory certbot will later fill with the real one)
  SELF_SIGNED_DAYS  validity of the placeholder in days (default: 30)
  CERT_SAN          its subjectAltName, for more than one name (default: from SERVER_NAME), e.g.
                    DNS:mailpit,DNS:localhost,IP:127.0.0.1
EOF
}

case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  '') ;;
  *) usage >&2; exit 2 ;;
esac

SERVER_NAME="${SERVER_NAME:-localhost}"
CERT_DIR="${CERT_DIR:-/etc/letsencrypt/live/$SERVER_NAME}"
SELF_SIGNED_DAYS="${SELF_SIGNED_DAYS:-30}"
fullchain="$CERT_DIR/fullchain.pem"
privkey="$CERT_DIR/privkey.pem"
# Written into the subject of every placeholder: how this script recognises its own certificates
# (and how a person reading `openssl x509 -subject` does).
MARKER='Temporary self-signed certificate'

log() { printf 'ensure-certificate: %s\n' "$*" >&2; }

command -v openssl >/dev/null 2>&1 || { log "openssl is required"; exit 1; }
case "$SELF_SIGNED_DAYS" in
  '' | *[!0-9]* | 0) log "SELF_SIGNED_DAYS must be a whole number of days (1 or more)"; exit 2 ;;
esac

# Symlinks are certbot's (live/ -> archive/). Even a broken one is left alone: writing through it
# would create a file inside certbot's archive, and certbot is the one to repair its own tree.
if [ -L "$fullchain" ] || [ -L "$privkey" ]; then
  log "$CERT_DIR is managed by certbot; nothing to do"
  exit 0
fi

if [ -e "$fullchain" ] && [ -e "$privkey" ]; then
  subject="$(openssl x509 -in "$fullchain" -noout -subject 2>/dev/null || true)"
  case "$subject" in
    *"$MARKER"*)
      # Our placeholder: keep it while it is valid for at least another day.
      if openssl x509 -in "$fullchain" -noout -checkend 86400 >/dev/null 2>&1; then
        log "$fullchain exists (temporary self-signed); nothing to do"
        exit 0
      fi
      log "the temporary self-signed certificate in $CERT_DIR expires within a day; replacing it"
      ;;
    *)
      log "$fullchain exists; nothing to do"
      exit 0
      ;;
  esac
elif [ -e "$fullchain" ] || [ -e "$privkey" ]; then
  # Half a pair is somebody's unfinished work (or a mistake): refuse rather than guess.
  log "only one of fullchain.pem and privkey.pem exists in $CERT_DIR; fix or remove it first"
  exit 1
fi

# The SAN is what clients check (the CN is ignored by browsers since 2017).
case "$SERVER_NAME" in
  localhost) san='DNS:localhost,IP:127.0.0.1,IP:::1' ;;
  *:*) san="IP:$SERVER_NAME" ;;
  *[!0-9.]*) san="DNS:$SERVER_NAME" ;;
  *) san="IP:$SERVER_NAME" ;;
esac
san="${CERT_SAN:-$san}"

mkdir -p "$CERT_DIR"
# Generated next to the destination and then renamed: nginx (or the watcher that reloads it) never
# sees a half-written file, and the key is private from the moment it exists.
tmp_key="$CERT_DIR/.privkey.pem.tmp.$$"
tmp_cert="$CERT_DIR/.fullchain.pem.tmp.$$"
trap 'rm -f "$tmp_key" "$tmp_cert" "$tmp_cert.err"' EXIT
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -days "$SELF_SIGNED_DAYS" \
  -subj "/O=$MARKER/CN=$SERVER_NAME" \
  -addext "subjectAltName=$san" \
  -addext 'basicConstraints=critical,CA:FALSE' \
  -addext 'keyUsage=critical,digitalSignature' \
  -addext 'extendedKeyUsage=serverAuth' \
  -keyout "$tmp_key" -out "$tmp_cert" 2>"$tmp_cert.err" || {
  log "openssl failed:"; cat "$tmp_cert.err" >&2; exit 1
}
# The certificate is public; only the key stays 0600 (nginx's master process reads it as root).
chmod 0644 "$tmp_cert"
# Key first: whoever sees the new fullchain.pem finds its key already in place.
mv -f "$tmp_key" "$privkey"
mv -f "$tmp_cert" "$fullchain"
log "created a temporary self-signed certificate for $SERVER_NAME in $CERT_DIR (valid $SELF_SIGNED_DAYS days)"
