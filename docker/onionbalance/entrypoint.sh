#!/bin/sh
# Writes a torrc for a client-only tor with a control socket (plus the site's *.conf files from
# /etc/tor/torrc.d), has tor check it, starts tor, waits until it has a consensus (onionbalance
# 0.2.2 exits at once without one: "Could not open cached consensus"), then runs onionbalance with
# the container's arguments appended (e.g. --is-testnet), through run-onionbalance.py: the same
# entry point as /usr/sbin/onionbalance, with ONIONBALANCE_INITIAL_DELAY as the pauses of its first
# round (fetch, pause, publish check, pause).
set -eu

fail() {
  echo "onionturn-onionbalance: $*" >&2
  exit 2
}

config="${ONIONBALANCE_CONFIG:-/etc/onionbalance/config.yaml}"
level="${ONIONBALANCE_LOG_LEVEL:-warning}"
# Seconds onionbalance pauses after its first fetch and after its first publish check (its own
# constant, 45, has no flag: run-onionbalance.py sets it).
delay="${ONIONBALANCE_INITIAL_DELAY:-45}"
[ -r "$config" ] || fail "no readable config at $config; make one with onionbalance-config (docs/onionbalance.md)"
case "$level" in
  debug|info|warning|error|critical) ;;
  *) fail "ONIONBALANCE_LOG_LEVEL must be debug, info, warning, error or critical, got '$level'" ;;
esac
case "$delay" in
  [0-9] | [1-9][0-9] | [1-5][0-9][0-9] | 600) ;;
  *) fail "ONIONBALANCE_INITIAL_DELAY must be whole seconds from 0 to 600 (default 45), got '$delay'" ;;
esac

# tor wants the control socket's directory private.
install -d -m 0700 /tmp/tor
cat > /tmp/torrc <<TORRC
## Written by $0 at container start.
DataDirectory /var/lib/tor
SocksPort 0
ControlSocket /tmp/tor/control
CookieAuthentication 1
CookieAuthFile /tmp/tor/control.cookie
Log notice stdout
## Site-specific settings
%include /etc/tor/torrc.d/*.conf
TORRC
if ! out=$(tor -f /tmp/torrc --defaults-torrc /dev/null --verify-config 2>&1); then
  printf '%s\n' "$out" >&2
  fail "tor refused the torrc (/tmp/torrc with /etc/tor/torrc.d/*.conf); see tor's lines above"
fi

tor -f /tmp/torrc --defaults-torrc /dev/null &
TOR_PID=$! python3 - <<'PY'
import os, sys, time
from stem.control import Controller
pid = os.environ['TOR_PID']
deadline = time.time() + 300
while time.time() < deadline:
    try:
        with open(f'/proc/{pid}/stat') as f:
            if f.read().rsplit(')', 1)[1].split()[0] == 'Z':
                raise FileNotFoundError
    except FileNotFoundError:
        print('onionturn-onionbalance: tor exited during start (its log is above)', file=sys.stderr)
        sys.exit(1)
    try:
        with Controller.from_socket_file('/tmp/tor/control') as c:
            c.authenticate()
            if 'PROGRESS=100' in c.get_info('status/bootstrap-phase'):
                sys.exit(0)
    except Exception:
        pass
    time.sleep(1)
print('onionturn-onionbalance: tor did not bootstrap within 300 s', file=sys.stderr)
sys.exit(1)
PY
exec python3 /usr/local/share/onionturn-onionbalance/run-onionbalance.py "$delay" -s /tmp/tor/control -c "$config" -v "$level" "$@"
