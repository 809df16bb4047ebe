#!/usr/bin/env bash
# Runs the edge's nginx templates (nginx/) outside Docker, the way the official nginx image runs them:
# the same template rendered with the same variables, the same snippets, a main nginx.conf equivalent to
# the image's. Everything nginx writes (pid, logs, temp files) stays in DIR. It needs an nginx as recent
# as the pinned image's configuration does (1.25.1+ for `http2 on`, OpenSSL 3.5+ for X25519MLKEM768):
# Debian 13's, or the edge test runner (npm run test:edge), where the test suites use it.
#
#   scripts/nginx-local.sh render DIR   write DIR/nginx.conf, DIR/conf.d/default.conf, DIR/snippets/
#   scripts/nginx-local.sh start DIR    render, then start nginx in the background (returns once it runs)
#   scripts/nginx-local.sh reload DIR   check the rendered files, then reload them (new certificates too)
#   scripts/nginx-local.sh stop DIR     graceful stop (nginx -s quit); returns once nginx has exited
#   scripts/nginx-local.sh test DIR     nginx -t on what is rendered in DIR
#
# render and start read SERVER_NAME, APP_UPSTREAM, HTTP_PORT, HTTPS_PORT, CERT_DIR and ACME_WEBROOT from
# the environment (see nginx/templates/default.conf.template); the certificate files must exist before
# start. reload, stop and test need no variables: they work on what was rendered.
#
# APP_UPSTREAM may list several app instances, separated by spaces ("127.0.0.1:3001 127.0.0.1:3002"):
# each gets its own server line in the upstream block. (In Docker one name covers every replica: the
# image renders the template once, with `app:3000`, and Docker's DNS answers with each address.) With a
# single instance the file is exactly what the image renders.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TEMPLATE="$ROOT/nginx/templates/default.conf.template"
SNIPPETS="$ROOT/nginx/snippets"
VARIABLES=(SERVER_NAME APP_UPSTREAM HTTP_PORT HTTPS_PORT CERT_DIR ACME_WEBROOT)

usage() {
  sed -n '6,10s/^# //p' "${BASH_SOURCE[0]}" >&2
  exit 2
}

die() {
  echo "nginx-local: $*" >&2
  exit 1
}

[ $# -eq 2 ] || usage
command=$1
[ -n "$2" ] || usage

# host:port, or several separated by single spaces (nothing else: a tab or newline would split them in
# one place and not in another).
valid_instances() {
  local entry
  [[ $1 =~ ^[^[:space:]]+( [^[:space:]]+)*$ ]] || return 1
  for entry in $1; do
    [[ $entry =~ ^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$ ]] || return 1
  done
}

# The values end up inside nginx directives: anything that could end a directive or open a block
# (`;`, `{`, quotes, spaces, `$`) is refused rather than rendered into the configuration.
check_variables() {
  local problems=() name value
  for name in "${VARIABLES[@]}"; do
    value="${!name:-}"
    if [ -z "$value" ]; then
      problems+=("$name is not set")
      continue
    fi
    case "$name" in
      SERVER_NAME) [[ $value =~ ^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ]] || problems+=("$name must be one host name") ;;
      APP_UPSTREAM) valid_instances "$value" || problems+=("$name must be host:port, or several separated by one space") ;;
      HTTP_PORT | HTTPS_PORT)
        { [[ $value =~ ^[0-9]{1,5}$ ]] && [ "$value" -ge 1 ] && [ "$value" -le 65535 ]; } ||
          problems+=("$name must be a port number") ;;
      CERT_DIR | ACME_WEBROOT) [[ $value =~ ^/[A-Za-z0-9._/@+-]*$ ]] || problems+=("$name must be an absolute path (letters, digits, . _ / @ + -)") ;;
    esac
  done
  if [ ${#problems[@]} -gt 0 ]; then
    printf 'nginx-local: %s\n' "${problems[@]}" >&2
    exit 2
  fi
}

case "$2" in
  *[[:space:]\;\{\}\"\'\$\\]*) die "the directory name must not contain spaces, quotes, ; { } \$ or \\" ;;
esac

absolute_dir() {
  [ -d "$1" ] || die "$1 is not a directory (run render or start first)"
  (cd "$1" && pwd)
}

# The main file of the official image (/etc/nginx/nginx.conf), with its paths moved into DIR. Not
# copied: `user nginx` (started as root, nginx runs its workers as nobody; as anyone else, as that user).
write_main_config() {
  local dir=$1
  cat >"$dir/nginx.conf" <<EOF
# Written by scripts/nginx-local.sh: the official nginx image's nginx.conf with every path inside
# $dir, so that conf.d/ and snippets/ here run as they do in the container.
worker_processes auto;

error_log $dir/error.log notice;
pid $dir/nginx.pid;

events {
    worker_connections 1024;
}

http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;

    log_format main '\$remote_addr - \$remote_user [\$time_local] "\$request" '
                    '\$status \$body_bytes_sent "\$http_referer" '
                    '"\$http_user_agent" "\$http_x_forwarded_for"';
    access_log $dir/access.log main;

    sendfile on;
    keepalive_timeout 65;

    # Not in the image's file: the compiled-in temporary directories (/var/lib/nginx on Debian) are
    # outside DIR and not writable by an unprivileged user.
    client_body_temp_path $dir/tmp/client_body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;

    include conf.d/*.conf;
}
EOF
}

# Reads the rendered configuration and repeats its `server FIRST` line (inside `upstream edge_app`) once
# for each further instance, with FIRST replaced. Compared as plain strings, not patterns: the
# instances were checked to be host:port already.
server_line_per_instance() {
  awk -v list="$*" '
    BEGIN { n = split(list, instance, " ") }
    /^upstream edge_app \{/ { inside = 1 }
    inside && /^\}/ { inside = 0 }
    {
      print
      if (inside && index($0, "    server " instance[1] " ") == 1) {
        at = length("    server ") + 1
        for (i = 2; i <= n; i++)
          print substr($0, 1, at - 1) instance[i] substr($0, at + length(instance[1]))
      }
    }
  '
}

render() {
  command -v envsubst >/dev/null || die "envsubst is not installed (apt-get install gettext-base)"
  check_variables
  mkdir -p "$1"
  local dir
  dir="$(absolute_dir "$1")"
  mkdir -p "$dir/conf.d" "$dir/snippets" "$dir/tmp"
  # Workers run as nobody when nginx is started as root: they must be able to reach the temporary
  # directories (which nginx itself creates, owned by them) through DIR, often a private mktemp -d.
  chmod 755 "$dir" "$dir/tmp"
  write_main_config "$dir"
  # Only the six variables, named explicitly: nginx's own $host, $request_id... stay as they are.
  # shellcheck disable=SC2016 # the list is literal by design
  # Rendered with the first instance, as the image would; the server line is then repeated for the others.
  local instances
  read -r -a instances <<<"$APP_UPSTREAM"
  APP_UPSTREAM="${instances[0]}" envsubst "$(printf '${%s} ' "${VARIABLES[@]}")" <"$TEMPLATE" |
    server_line_per_instance "${instances[@]}" >"$dir/conf.d/default.conf"
  rm -f "$dir"/snippets/*.conf
  cp "$SNIPPETS"/*.conf "$dir/snippets/"
  # The one path of the snippets that the container has and this directory does not.
  printf 'access_log %s/access.log edge;\n' "$dir" >"$dir/snippets/access-log.conf"
}

nginx_in() {
  command -v nginx >/dev/null || die "nginx is not installed (apt-get install nginx)"
  local dir=$1
  shift
  nginx -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" "$@"
}

# The master's pid while it runs; nothing when it does not.
running_pid() {
  local pid
  pid="$(cat "$1/nginx.pid" 2>/dev/null || true)"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
}

wait_until() {
  local tenths=$1
  shift
  for _ in $(seq "$tenths"); do
    if "$@"; then return 0; fi
    sleep 0.1
  done
  return 1
}

stopped() { [ -z "$(running_pid "$1")" ]; }
started() { [ -n "$(running_pid "$1")" ]; }

dir_arg=$2
case "$command" in
  render)
    render "$dir_arg"
    ;;
  start)
    render "$dir_arg"
    dir="$(absolute_dir "$dir_arg")"
    [ -z "$(running_pid "$dir")" ] || die "nginx already runs for $dir (pid $(running_pid "$dir"))"
    # The listening sockets are open when this returns; the pid file follows once nginx has forked.
    nginx_in "$dir"
    wait_until 100 started "$dir" || die "nginx did not start; see $dir/error.log"
    ;;
  reload)
    dir="$(absolute_dir "$dir_arg")"
    [ -n "$(running_pid "$dir")" ] || die "nginx does not run for $dir"
    # A broken configuration is reported here; nginx itself would keep the old one and only log it.
    nginx_in "$dir" -t -q
    nginx_in "$dir" -s reload
    ;;
  stop)
    dir="$(absolute_dir "$dir_arg")"
    pid="$(running_pid "$dir")"
    [ -n "$pid" ] || exit 0
    # What `nginx -s quit` does, without parsing the configuration again (it may be gone or broken):
    # SIGQUIT to the master, which lets requests in flight finish, then waits for its workers.
    kill -QUIT "$pid"
    if ! wait_until 100 stopped "$dir"; then
      echo "nginx-local: nginx (pid $pid) still runs after 10 s, stopping it fast" >&2
      kill -TERM "$pid" 2>/dev/null || true
      wait_until 50 stopped "$dir" || die "nginx (pid $pid) did not stop"
    fi
    ;;
  test)
    dir="$(absolute_dir "$dir_arg")"
    nginx_in "$dir" -t
    ;;
  *)
    usage
    ;;
esac
