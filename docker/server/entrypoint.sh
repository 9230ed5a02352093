#!/bin/sh
# onionturn server container: on first start create the REST shared secret in the state volume
# (mode 0600, never printed), then replace this shell with `onionturn server ARGS...`.
# Configuration comes from ONIONTURN_* variables (see docker/.env.example) and ARGS.
set -eu
# docker-compose passes a setting left empty in docker/.env as an empty string: empty means unset.
for name in ONIONTURN_METRICS ONIONTURN_CERT ONIONTURN_KEY; do
  eval "[ -n \"\${$name:-}\" ] || unset $name"
done
# Compose's onion mode: tor sends a PROXY line with the circuit id first (torrc.onion), so the
# tcp:// listeners read it (healthcheck.sh follows the same rule). Outside compose, TOR_MODE is unset.
if [ "${TOR_MODE:-}" = onion ]; then
  case "${ONIONTURN_LISTEN:-}" in *tcp://*) export ONIONTURN_TOR_CIRCUIT_ID=true ;; esac
fi
secret="${ONIONTURN_SECRET_FILE:-}"
if [ -n "$secret" ] && [ ! -e "$secret" ]; then
  case "$secret" in
    /var/lib/onionturn/*) onionturn secret "$secret" >&2 ;;
    *) echo "onionturn-entrypoint: secret file $secret does not exist (mount it, or leave ONIONTURN_SECRET_FILE at its default to have one created)" >&2; exit 2 ;;
  esac
fi
exec onionturn server "$@"
