#!/bin/sh
# onionturn server container: on first start create the REST shared secret in the state volume
# (mode 0600, never printed), then replace this shell with `onionturn server ARGS...`.
# Configuration comes from ONIONTURN_* variables (see docker/.env.example) and ARGS.
set -eu
# docker-compose passes a setting left empty in docker/.env as an empty string: empty means unset.
for name in ONIONTURN_METRICS ONIONTURN_CERT ONIONTURN_KEY; do
  eval "[ -n \"\${$name:-}\" ] || unset $name"
done
secret="${ONIONTURN_SECRET_FILE:-}"
if [ -n "$secret" ] && [ ! -e "$secret" ]; then
  case "$secret" in
    /var/lib/onionturn/*) onionturn secret "$secret" >&2 ;;
    *) echo "onionturn-entrypoint: secret file $secret does not exist (mount it, or leave ONIONTURN_SECRET_FILE at its default to have one created)" >&2; exit 2 ;;
  esac
fi
exec onionturn server "$@"
