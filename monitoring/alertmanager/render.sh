#!/bin/sh
# Writes Alertmanager's configuration with ALERT_WEBHOOK_URL in place of the placeholder
# `http://alert-webhook.invalid/` (Alertmanager reads no environment variables):
#   render.sh alertmanager.yml OUT.yml
# The alertmanager service runs it before Alertmanager; scripts/check-ops.sh checks its output.
set -eu
[ $# -eq 2 ] || { echo "usage: render.sh IN OUT" >&2; exit 2; }
: "${ALERT_WEBHOOK_URL:?render.sh: set ALERT_WEBHOOK_URL}"
case "$ALERT_WEBHOOK_URL" in
    http://* | https://*) ;;
    *) echo "render.sh: ALERT_WEBHOOK_URL must start with http:// or https://, got '$ALERT_WEBHOOK_URL'" >&2; exit 1 ;;
esac
# Escape what sed's replacement treats specially: &, the | delimiter and backslashes.
url=$(printf '%s' "$ALERT_WEBHOOK_URL" | sed 's/[&|\\]/\\&/g')
sed "s|http://alert-webhook.invalid/|$url|" "$1" > "$2"
