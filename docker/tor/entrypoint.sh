#!/bin/sh
# Renders /usr/local/share/onionturn-tor/torrc.$TOR_MODE with the environment into /tmp/torrc and
# runs tor with it. Extra configuration: *.conf files in /etc/tor/torrc.d (mounted by compose).
set -eu
share=/usr/local/share/onionturn-tor
mode="${TOR_MODE:-onion}"
case "$mode" in
  onion|exit) ;;
  *) echo "onionturn-tor: TOR_MODE must be 'onion' or 'exit', got '$mode'" >&2; exit 2 ;;
esac
if [ "$mode" = exit ]; then
  # An exit relay must say who runs it: https://community.torproject.org/relay/setup/exit/
  : "${TOR_NICKNAME:?TOR_MODE=exit needs TOR_NICKNAME}"
  : "${TOR_CONTACT:?TOR_MODE=exit needs TOR_CONTACT (an email address abuse reports can reach)}"
fi
# Values go into a torrc line: refuse newlines and the sed delimiter.
for value in "${ONION_PORT:-}" "${ONION_TARGET:-}" "${TOR_NICKNAME:-}" "${TOR_CONTACT:-}" "${TOR_ORPORT:-}" "${TOR_EXIT_POLICY:-}"; do
  case "$value" in *'|'*|*'
'*) echo "onionturn-tor: configuration values may not contain '|' or newlines" >&2; exit 2 ;; esac
done
sed -e "s|@ONION_PORT@|${ONION_PORT:-3478}|g" \
    -e "s|@ONION_TARGET@|${ONION_TARGET:-127.0.0.1:3478}|g" \
    -e "s|@TOR_NICKNAME@|${TOR_NICKNAME:-}|g" \
    -e "s|@TOR_CONTACT@|${TOR_CONTACT:-}|g" \
    -e "s|@TOR_ORPORT@|${TOR_ORPORT:-9001}|g" \
    -e "s|@TOR_EXIT_POLICY@|${TOR_EXIT_POLICY:-accept *:3478, accept *:5349, reject *:*}|g" \
    "$share/torrc.$mode" > /tmp/torrc
: > /tmp/tor-notices.log
echo "$mode" > /tmp/tor-mode
exec tor -f /tmp/torrc --defaults-torrc /dev/null "$@"
