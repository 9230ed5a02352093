#!/bin/sh
# Healthy once tor has bootstrapped (and, in onion mode, published the service's hostname file).
grep -q 'Bootstrapped 100%' /tmp/tor-notices.log || { echo 'tor has not bootstrapped yet'; exit 1; }
if [ "$(cat /tmp/tor-mode 2>/dev/null)" = onion ]; then
  test -s /var/lib/tor/onionturn/hostname || { echo 'no onion hostname yet'; exit 1; }
  cat /var/lib/tor/onionturn/hostname
fi
exit 0
