#!/bin/sh
# The compose stack's private CA for the data stores, and the certificates it issues (ASVS 13.2.1,
# 12.3.1; docs/decisions/0035). Run by the one-shot `data-certs-init` service on every `up`, as root,
# before postgres, redis, migrate and app start.
#
#   CA (ECDSA P-256, 10 years)  $CA_DIR/ca.key (only this service's volume, data-ca) and ca.crt
#   postgres  (uid 999)   server.crt/key for the name `postgres`, ca.crt (the client CA pg_hba's `cert` checks)
#   redis     (uid 999)   server.crt/key for `redis`, ca.crt (tls-auth-clients), healthcheck.crt/key
#                         and admin.crt/key (the health check's and the operator's redis-cli, inside
#                         the container: CN=healthcheck, CN=admin)
#   app       (uid 1000)  ca.crt (verifies both servers), postgres-client.crt/key (CN=app, the role the
#                         app and migrate log in as), redis-client.crt/key (CN=app, the ACL user)
# Each consumer's files are in a volume of their own under $TLS_DIR (app-tls, postgres-tls, redis-tls),
# which this service alone writes and its consumer mounts read-only: this service never sees the
# passwords and keys secrets-init makes. Every key is made inside the volume of the one service that
# uses it, mode 0600, owned by that service's user, and is never copied anywhere; the CA key never
# leaves $CA_DIR.
#
# Idempotent: a certificate is kept while it is valid for more than RENEW_DAYS, chains to the current CA
# and is for the right name; otherwise a new key and certificate replace it (then `docker compose
# restart postgres redis app`, docs/deploy.md). A CA certificate within CA_RENEW_DAYS of its end is
# issued again for the same key and name, so the certificates it signed stay valid and a server still
# holding the old CA certificate trusts the ones issued under the new one: nothing has to restart. A
# new CA key (and with it every certificate) only when ca.crt is deleted (a compromised key), which
# needs the servers recreated too (docs/deploy.md, ADR 0035). A ca.key that does not match ca.crt stops
# the run.
set -eu

CA_DIR="${CA_DIR:-/ca}"
TLS_DIR="${TLS_DIR:-/tls}"
LEAF_DAYS="${LEAF_DAYS:-397}"
RENEW_DAYS="${RENEW_DAYS:-60}"
CA_DAYS="${CA_DAYS:-3650}"
CA_RENEW_DAYS="${CA_RENEW_DAYS:-400}"
CA_SUBJECT="/CN=express-hardened-starter data stores CA"
WORK="$(mktemp -d)"
# A run that stops half-way (a full disk, a bad key) leaves no half-written file behind: the new files
# are made under these temporary names and renamed into place only once complete.
trap 'rm -rf "$WORK"; rm -f "$CA_DIR"/ca.*.new "$TLS_DIR"/*/.*.new' EXIT
umask 077

say() { echo "data-store-certs: $*"; }
fail() {
  echo "data-store-certs: $*" >&2
  exit 1
}
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

# ca_certificate KEY_OPTIONS...: a CA certificate into ca.crt.new, for a new key or the given one.
ca_certificate() {
  openssl req -x509 -new -config "$WORK/openssl.cnf" -extensions ca -subj "$CA_SUBJECT" \
    -days "$CA_DAYS" -out "$CA_DIR/ca.crt.new" "$@"
}

ensure_ca() {
  mkdir -p "$CA_DIR"
  chmod 700 "$CA_DIR"
  if [ -s "$CA_DIR/ca.key" ] && [ -s "$CA_DIR/ca.crt" ]; then
    # A key that is not the certificate's would sign certificates nobody trusts: stop and say so
    # rather than keep a CA that cannot work (or silently replace one that might).
    if [ "$(openssl pkey -in "$CA_DIR/ca.key" -pubout)" != "$(openssl x509 -in "$CA_DIR/ca.crt" -noout -pubkey)" ]; then
      fail "$CA_DIR/ca.key does not belong to $CA_DIR/ca.crt: restore the pair from a backup, or delete ca.crt to make a new CA (docs/deploy.md)"
    fi
    if days_left_ok "$CA_DIR/ca.crt" "$CA_RENEW_DAYS"; then
      say "kept the CA"
      return
    fi
    # Same key, same name: every certificate it signed still chains to it, and a server that still
    # holds the old CA certificate trusts the new ones, so renewing it breaks no running service.
    ca_certificate -key "$CA_DIR/ca.key"
    mv "$CA_DIR/ca.crt.new" "$CA_DIR/ca.crt"
    say "renewed the CA certificate (same key: every certificate is kept)"
    return
  fi
  ca_certificate -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -noenc -keyout "$CA_DIR/ca.key.new"
  mv "$CA_DIR/ca.key.new" "$CA_DIR/ca.key"
  mv "$CA_DIR/ca.crt.new" "$CA_DIR/ca.crt"
  say "created a new CA (every certificate below is issued again: recreate postgres, redis and app, docs/deploy.md)"
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
      -noenc -subj "/CN=$cn" -keyout "$dir/.$name.key.new" -out "$WORK/$name.csr"
    printf '%s\n' 'basicConstraints = critical,CA:FALSE' 'keyUsage = critical,digitalSignature' \
      "extendedKeyUsage = $5" "subjectAltName = $6" 'subjectKeyIdentifier = hash' \
      'authorityKeyIdentifier = keyid' >"$WORK/$name.ext"
    openssl x509 -req -in "$WORK/$name.csr" -CA "$CA_DIR/ca.crt" -CAkey "$CA_DIR/ca.key" \
      -set_serial "0x$(openssl rand -hex 16)" -days "$LEAF_DAYS" \
      -extfile "$WORK/$name.ext" -out "$dir/.$name.crt.new"
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

# A consumer's volume: 0700 and its user's, like secrets-init's; ca.crt in it, public, but there so
# that the consumer mounts nothing else.
prepare() {
  uid="$1" dir="$2"
  own "$uid:$uid" "$dir"
  chmod 700 "$dir"
  cp "$CA_DIR/ca.crt" "$dir/.ca.crt.new"
  own "$uid:$uid" "$dir/.ca.crt.new"
  chmod 600 "$dir/.ca.crt.new"
  mv "$dir/.ca.crt.new" "$dir/ca.crt"
}

# Each volume is mounted by the compose file: without one, nothing would reach its consumer.
for volume in app postgres redis; do
  [ -d "$TLS_DIR/$volume" ] || fail "$TLS_DIR/$volume is missing (its volume is not mounted)"
done

ensure_ca
prepare 999 "$TLS_DIR/postgres"
prepare 999 "$TLS_DIR/redis"
prepare 1000 "$TLS_DIR/app"
issue 999 "$TLS_DIR/postgres" server postgres serverAuth "DNS:postgres,DNS:localhost,IP:127.0.0.1"
issue 999 "$TLS_DIR/redis" server redis serverAuth "DNS:redis,DNS:localhost,IP:127.0.0.1"
issue 999 "$TLS_DIR/redis" healthcheck healthcheck clientAuth "DNS:healthcheck"
issue 999 "$TLS_DIR/redis" admin admin clientAuth "DNS:admin"
issue 1000 "$TLS_DIR/app" postgres-client app clientAuth "DNS:app"
issue 1000 "$TLS_DIR/app" redis-client app clientAuth "DNS:app"
