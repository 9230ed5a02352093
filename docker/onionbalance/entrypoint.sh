#!/bin/sh
# Starts a client-only tor with a control socket, waits until it has a consensus (onionbalance
# 0.2.2 exits at once without one: "Could not open cached consensus"), then runs onionbalance.
set -eu
config="${ONIONBALANCE_CONFIG:-/etc/onionbalance/config.yaml}"
[ -r "$config" ] || { echo "onionturn-onionbalance: no readable config at $config; make one with onionbalance-config (docs/onionbalance.md)" >&2; exit 2; }
# tor wants the control socket's directory private.
install -d -m 0700 /tmp/tor
cat > /tmp/torrc <<TORRC
DataDirectory /var/lib/tor
SocksPort 0
ControlSocket /tmp/tor/control
CookieAuthentication 1
CookieAuthFile /tmp/tor/control.cookie
Log notice stdout
TORRC
tor -f /tmp/torrc --defaults-torrc /dev/null &
python3 - <<'PY'
import sys, time
from stem.control import Controller
deadline = time.time() + 300
while time.time() < deadline:
    try:
        with Controller.from_socket_file('/tmp/tor/control') as c:
            c.authenticate()
            if 'PROGRESS=100' in c.get_info('status/bootstrap-phase'):
                sys.exit(0)
    except Exception:
        pass
    time.sleep(2)
print('onionturn-onionbalance: tor did not bootstrap within 300 s', file=sys.stderr)
sys.exit(1)
PY
exec onionbalance -s /tmp/tor/control -c "$config" "$@"
