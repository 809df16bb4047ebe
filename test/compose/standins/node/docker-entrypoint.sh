#!/bin/sh
# As in the official image: a first argument that is an option, or a file that is not a command,
# is handed to node; anything else runs as given.
set -e
if [ "${1#-}" != "$1" ] || { [ -n "$1" ] && [ -z "$(command -v -- "$1")" ] && [ -f "$1" ]; }; then
  set -- node "$@"
fi
exec "$@"
