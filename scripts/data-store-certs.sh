#!/bin/sh
# The compose stack's private CA for the data stores, and the certificates it issues (ASVS 13.2.1,
# 12.3.1; docs/decisions/0035). Run by the one-shot `data-certs-init` service on every `up`, as root,
# after secrets-init and before postgres, redis, migrate and app start.
#
#   CA (ECDSA P-256, 10 years)  $CA_DIR/ca.key (only this service's volume) and ca.crt
#   postgres  (uid 999)   server.crt/key for the name `postgres`, ca.crt (the client CA pg_hba's `cert` checks)
#   redis     (uid 999)   server.crt/key for `redis`, ca.crt (tls-auth-clients), healthcheck.crt/key
#                         and admin.crt/key (the health check's and the operator's redis-cli, inside
#                         the container: CN=healthcheck, CN=admin)
#   app       (uid 1000)  ca.crt (verifies both servers), postgres-client.crt/key (CN=app, the role the
#                         app and migrate log in as), redis-client.crt/key (CN=app, the ACL user)
# Every key is made inside the volume of the one service that uses it, mode 0600, owned by that
# service's user, and is never copied anywhere; the CA key never leaves $CA_DIR.
#
# Idempotent: a certificate is kept while it is valid for more than RENEW_DAYS, chains to the current CA
# and is for the right name; otherwise a new key and certificate replace it (then `docker compose
# restart postgres redis app`, docs/deploy.md). A CA within CA_RENEW_DAYS of its end is replaced, and
# with it every certificate. Delete ca.crt in the data-ca volume to force that (a compromised key).
set -eu

CA_DIR="${CA_DIR:-/ca}"
SECRETS_DIR="${SECRETS_DIR:-/secrets}"
LEAF_DAYS="${LEAF_DAYS:-397}"
RENEW_DAYS="${RENEW_DAYS:-60}"
CA_DAYS="${CA_DAYS:-3650}"
CA_RENEW_DAYS="${CA_RENEW_DAYS:-400}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
umask 077

say() { echo "data-store-certs: $*"; }
# Owners are set as root (the service); a test run as another user keeps its own files.
own() { if [ "$(id -u)" = 0 ]; then chown "$@"; fi; }

# Our own extension sections, so nothing from the system's openssl.cnf (CA:TRUE on `req -x509`) applies.
cat >"$WORK/openssl.cnf" <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
[ca]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
CNF

days_left_ok() { # FILE DAYS: the certificate exists and is valid for at least DAYS more days
  [ -s "$1" ] && openssl x509 -in "$1" -noout -checkend "$(($2 * 86400))" >/dev/null 2>&1
}

ensure_ca() {
  mkdir -p "$CA_DIR"
  chmod 700 "$CA_DIR"
  if [ -s "$CA_DIR/ca.key" ] && days_left_ok "$CA_DIR/ca.crt" "$CA_RENEW_DAYS"; then
    say "kept the CA"
    return
  fi
  openssl req -x509 -new -config "$WORK/openssl.cnf" -extensions ca \
    -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -noenc \
    -subj "/CN=express-hardened-starter data stores CA" -days "$CA_DAYS" \
    -keyout "$CA_DIR/ca.key.new" -out "$CA_DIR/ca.crt.new" 2>/dev/null
  mv "$CA_DIR/ca.key.new" "$CA_DIR/ca.key"
  mv "$CA_DIR/ca.crt.new" "$CA_DIR/ca.crt"
  say "created a new CA (every certificate below is issued again)"
}

# issue OWNER_UID DIR NAME CN EKU SAN: DIR/NAME.crt and DIR/NAME.key, kept while still good.
issue() {
  uid="$1" dir="$2" name="$3" cn="$4"
  crt="$dir/$name.crt" key="$dir/$name.key"
  if [ -s "$key" ] && days_left_ok "$crt" "$RENEW_DAYS" &&
    openssl verify -CAfile "$CA_DIR/ca.crt" "$crt" >/dev/null 2>&1 &&
    [ "$(openssl x509 -in "$crt" -noout -subject -nameopt RFC2253)" = "subject=CN=$cn" ]; then
    say "kept $(basename "$dir")/$name.crt"
  else
    openssl req -new -config "$WORK/openssl.cnf" -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
      -noenc -subj "/CN=$cn" -keyout "$dir/.$name.key.new" -out "$WORK/$name.csr" 2>/dev/null
    printf '%s\n' 'basicConstraints = critical,CA:FALSE' 'keyUsage = critical,digitalSignature' \
      "extendedKeyUsage = $5" "subjectAltName = $6" 'subjectKeyIdentifier = hash' \
      'authorityKeyIdentifier = keyid' >"$WORK/$name.ext"
    openssl x509 -req -in "$WORK/$name.csr" -CA "$CA_DIR/ca.crt" -CAkey "$CA_DIR/ca.key" \
      -set_serial "0x$(openssl rand -hex 16)" -days "$LEAF_DAYS" \
      -extfile "$WORK/$name.ext" -out "$dir/.$name.crt.new" 2>/dev/null
    # Key first: a reader sees the old pair, or a new key with its old certificate for a moment, never
    # a certificate without its key.
    for file in "$dir/.$name.key.new" "$dir/.$name.crt.new"; do own "$uid:$uid" "$file"; chmod 600 "$file"; done
    mv "$dir/.$name.key.new" "$key"
    mv "$dir/.$name.crt.new" "$crt"
    say "issued $(basename "$dir")/$name.crt (CN=$cn, $LEAF_DAYS days)"
  fi
  own "$uid:$uid" "$key" "$crt"
  chmod 600 "$key" "$crt"
}

# ca.crt for a consumer: public, but in its volume so that it mounts nothing else.
publish_ca() {
  uid="$1" dir="$2"
  cp "$CA_DIR/ca.crt" "$dir/.ca.crt.new"
  own "$uid:$uid" "$dir/.ca.crt.new"
  chmod 600 "$dir/.ca.crt.new"
  mv "$dir/.ca.crt.new" "$dir/ca.crt"
}

for volume in app postgres redis; do
  if [ ! -d "$SECRETS_DIR/$volume" ]; then
    echo "data-store-certs: $SECRETS_DIR/$volume is missing (secrets-init creates it first)" >&2
    exit 1
  fi
done

ensure_ca
publish_ca 999 "$SECRETS_DIR/postgres"
publish_ca 999 "$SECRETS_DIR/redis"
publish_ca 1000 "$SECRETS_DIR/app"
issue 999 "$SECRETS_DIR/postgres" server postgres serverAuth "DNS:postgres,DNS:localhost,IP:127.0.0.1"
issue 999 "$SECRETS_DIR/redis" server redis serverAuth "DNS:redis,DNS:localhost,IP:127.0.0.1"
issue 999 "$SECRETS_DIR/redis" healthcheck healthcheck clientAuth "DNS:healthcheck"
issue 999 "$SECRETS_DIR/redis" admin admin clientAuth "DNS:admin"
issue 1000 "$SECRETS_DIR/app" postgres-client app clientAuth "DNS:app"
issue 1000 "$SECRETS_DIR/app" redis-client app clientAuth "DNS:app"
