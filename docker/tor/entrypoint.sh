#!/bin/sh
# Writes /tmp/torrc for TOR_MODE and runs tor with it. The torrc is the fixed part in
# /usr/local/share/onionturn-tor/torrc.$TOR_MODE followed by one line per setting from the
# environment, each written whole with printf (no text substitution, so a value can never become
# a torrc line of its own), then the site's *.conf files from /etc/tor/torrc.d (mounted by compose).
# Every value is checked first: a control character (newline, carriage return, tab, escape, ...)
# or a character tor would read as syntax stops the container with one line and exit code 2.
set -eu
share=/usr/local/share/onionturn-tor
torrc=/tmp/torrc

fail() {
  echo "onionturn-tor: $*" >&2
  exit 2
}

mode="${TOR_MODE:-onion}"
onion_port="${ONION_PORT:-3478}"
onion_target="${ONION_TARGET:-127.0.0.1:3478}"
onion_max_streams="${ONION_MAX_STREAMS:-256}"
nickname="${TOR_NICKNAME:-}"
contact="${TOR_CONTACT:-}"
orport="${TOR_ORPORT:-9001}"
exit_policy="${TOR_EXIT_POLICY:-accept *:3478, accept *:5349, reject *:*}"
# onion mode: make this onion service an Onionbalance backend of that frontend address.
ob_frontend="${ONIONBALANCE_FRONTEND:-}"

# 1. No control characters anywhere: checked before anything else, for every variable.
for name in TOR_MODE ONION_PORT ONION_TARGET ONION_MAX_STREAMS TOR_NICKNAME TOR_CONTACT TOR_ORPORT TOR_EXIT_POLICY ONIONBALANCE_FRONTEND; do
  eval "value=\${$name:-}"
  case "$value" in
    *[[:cntrl:]]*) fail "$name contains a control character (newline, carriage return, tab, ...); refusing to write it into the torrc" ;;
  esac
done

# 2. Each value in the shape its torrc option takes.
case "$mode" in
  onion|exit) ;;
  *) fail "TOR_MODE must be 'onion' or 'exit', got '$mode'" ;;
esac
port_number() { # NAME VALUE: a TCP port 1-65535
  case "$2" in
    ''|*[!0-9]*) fail "$1 must be a port number (1-65535), got '$2'" ;;
  esac
  [ "${#2}" -le 5 ] && [ "$2" -ge 1 ] && [ "$2" -le 65535 ] || fail "$1 must be a port number (1-65535), got '$2'"
}
if [ "$mode" = onion ]; then
  port_number ONION_PORT "$onion_port"
  # ADDR:PORT, [IPv6]:PORT, PORT or unix:/PATH
  case "$onion_target" in
    ''|*[!]0-9A-Za-z.:/_[-]*) fail "ONION_TARGET must be ADDR:PORT, [IPv6]:PORT or unix:/PATH, got '$onion_target'" ;;
  esac
  case "$onion_max_streams" in
    ''|*[!0-9]*) fail "ONION_MAX_STREAMS must be a number of streams (1-65535), got '$onion_max_streams'" ;;
  esac
  [ "${#onion_max_streams}" -le 5 ] && [ "$onion_max_streams" -ge 1 ] && [ "$onion_max_streams" -le 65535 ] \
    || fail "ONION_MAX_STREAMS must be a number of streams (1-65535), got '$onion_max_streams'"
  if [ -n "$ob_frontend" ]; then
    # A v3 onion address: 56 base32 characters and .onion.
    case "$ob_frontend" in
      *[!a-z2-7.]*|*.*.*) fail "ONIONBALANCE_FRONTEND must be the frontend's v3 address (56 characters a-z, 2-7, then .onion), got '$ob_frontend'" ;;
    esac
    [ "${#ob_frontend}" -eq 62 ] && [ "${ob_frontend%.onion}" != "$ob_frontend" ] \
      || fail "ONIONBALANCE_FRONTEND must be the frontend's v3 address (56 characters a-z, 2-7, then .onion), got '$ob_frontend'"
  fi
else
  # An exit relay must say who runs it: https://community.torproject.org/relay/setup/exit/
  [ -n "$nickname" ] || fail "TOR_MODE=exit needs TOR_NICKNAME"
  [ -n "$contact" ] || fail "TOR_MODE=exit needs TOR_CONTACT (an email address abuse reports can reach)"
  case "$nickname" in
    *[!0-9A-Za-z]*) fail "TOR_NICKNAME must be 1-19 letters and digits, got '$nickname'" ;;
  esac
  [ "${#nickname}" -le 19 ] || fail "TOR_NICKNAME must be 1-19 letters and digits, got '$nickname'"
  # Free text, but tor reads a backslash as an escape or a line continuation.
  case "$contact" in
    *\\*) fail "TOR_CONTACT may not contain a backslash" ;;
  esac
  # PORT, ADDR:PORT or [IPv6]:PORT, optionally followed by flags (e.g. IPv4Only).
  case "$orport" in
    ''|*[!]0-9A-Za-z.:[\ ]*) fail "TOR_ORPORT must be PORT or ADDR:PORT (optionally with flags), got '$orport'" ;;
  esac
  # Tor ExitPolicy syntax: accept/reject ADDR[/MASK]:PORT[-PORT], comma separated.
  case "$exit_policy" in
    ''|*[!]0-9A-Za-z\ \*.:,/[-]*) fail "TOR_EXIT_POLICY must be comma-separated 'accept|reject ADDR[/MASK]:PORT[-PORT]' rules, got '$exit_policy'" ;;
  esac
fi

# 3. The torrc: fixed part, then one whole line per setting (printf '%s', never re-parsed).
{
  printf '## Written by %s at container start. Fixed part: %s\n' "$0" "$share/torrc.$mode"
  cat "$share/torrc.$mode"
  printf '## From the environment\n'
  if [ "$mode" = onion ]; then
    # These follow the HiddenServiceDir at the end of torrc.onion, so they configure that service.
    printf 'HiddenServicePort %s %s\n' "$onion_port" "$onion_target"
    printf 'HiddenServiceMaxStreams %s\n' "$onion_max_streams"
    if [ -n "$ob_frontend" ]; then
      # tor reads the frontend's address from ob_config in the HiddenServiceDir (torrc.onion).
      install -d -m 0700 /var/lib/tor/onionturn
      printf 'MasterOnionAddress %s\n' "$ob_frontend" > /var/lib/tor/onionturn/ob_config
      printf 'HiddenServiceOnionbalanceInstance 1\n'
    elif [ -f /var/lib/tor/onionturn/ob_config ]; then
      rm -f /var/lib/tor/onionturn/ob_config
    fi
  else
    printf 'Nickname %s\n' "$nickname"
    printf 'ContactInfo %s\n' "$contact"
    printf 'ORPort %s\n' "$orport"
    printf 'ExitPolicy %s\n' "$exit_policy"
  fi
  printf '## Site-specific settings\n%%include /etc/tor/torrc.d/*.conf\n'
} > "$torrc"
: > /tmp/tor-notices.log
echo "$mode" > /tmp/tor-mode
exec tor -f "$torrc" --defaults-torrc /dev/null "$@"
