#!/bin/sh
# The parts of the official redis entrypoint this project relies on, written from its documentation:
# options or a .conf file as the first argument mean redis-server; started as root, it hands /data to
# redis and runs the server as redis, with a private umask.
set -e

case "${1:-}" in
  -* | *.conf) set -- redis-server "$@" ;;
esac

if [ "${1:-}" = redis-server ] && [ "$(id -u)" = 0 ]; then
  find . \! -user redis -exec chown redis:redis '{}' +
  exec setpriv --reuid=redis --regid=redis --clear-groups "$0" "$@"
fi

umask 0077
exec "$@"
