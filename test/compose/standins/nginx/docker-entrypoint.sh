#!/bin/sh
# The official nginx entrypoint's contract, written from its documentation: when the command is nginx,
# the files in /docker-entrypoint.d run first in version order (*.envsh sourced, *.sh executed, each
# only when executable), then the command replaces this shell.
set -e

log() {
  if [ -z "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ]; then printf '%s\n' "$*"; fi
}

if [ "${1:-}" = nginx ] || [ "${1:-}" = nginx-debug ]; then
  for f in $(find /docker-entrypoint.d/ -follow -type f -print | sort -V); do
    case "$f" in
      *.envsh)
        if [ -x "$f" ]; then
          log "$0: sourcing $f"
          # shellcheck disable=SC1090
          . "$f"
        else
          log "$0: ignoring $f, not executable"
        fi
        ;;
      *.sh)
        if [ -x "$f" ]; then
          log "$0: launching $f"
          "$f"
        else
          log "$0: ignoring $f, not executable"
        fi
        ;;
      *) log "$0: ignoring $f" ;;
    esac
  done
  log "$0: configuration complete; ready for start up"
fi

exec "$@"
