#!/bin/sh
# The server image's healthcheck: one real STUN Binding request over TCP to the first tcp:// or
# tls:// listener of ONIONTURN_LISTEN (on loopback; --insecure: a tls:// certificate names the
# public host, not 127.0.0.1). In compose's onion mode the server reads tor's PROXY line first
# (entrypoint.sh turns on --tor-circuit-id), so the probe sends one too ("PROXY UNKNOWN").
set -eu
if [ "${TOR_MODE:-}" = onion ]; then
  case "${ONIONTURN_LISTEN:-}" in *tcp://*) export ONIONTURN_TOR_CIRCUIT_ID=true ;; esac
fi
exec onionturn probe --timeout 3000 --insecure
