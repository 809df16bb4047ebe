#!/bin/sh
# Renders NGINX_ENVSUBST_TEMPLATE_DIR/**/*NGINX_ENVSUBST_TEMPLATE_SUFFIX into NGINX_ENVSUBST_OUTPUT_DIR,
# substituting only variables that are set in the environment and whose names match
# NGINX_ENVSUBST_FILTER (a regular expression; empty matches every name), as the official image does.
# nginx's own $variables are never set in the environment, so they survive.
set -e

template_dir="${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}"
suffix="${NGINX_ENVSUBST_TEMPLATE_SUFFIX:-.template}"
output_dir="${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}"
filter="${NGINX_ENVSUBST_FILTER:-}"

[ -d "$template_dir" ] || exit 0
if [ ! -w "$output_dir" ]; then
  echo "$0: ERROR: $template_dir exists, but $output_dir is not writable" >&2
  exit 0
fi

# '${NAME} ${OTHER} ...': envsubst's list of the variables it may replace.
names=''
for name in $(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' | grep -E -- "${filter:-.}" || true); do
  names="$names \${$name}"
done

find "$template_dir" -follow -type f -name "*$suffix" -print | while read -r template; do
  relative="${template#"$template_dir/"}"
  output="$output_dir/${relative%"$suffix"}"
  mkdir -p "$(dirname "$output")"
  echo "$0: rendering $template to $output"
  envsubst "$names" <"$template" >"$output"
done
