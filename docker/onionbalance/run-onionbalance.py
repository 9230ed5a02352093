# Runs Debian's onionbalance (0.2.2) exactly as /usr/sbin/onionbalance does (its console entry
# point), after setting the pause of its first scheduler round:
#   python3 run-onionbalance.py INITIAL_DELAY_SECONDS [onionbalance arguments...]
# onionbalance runs its fetch job, sleeps INITIAL_CALLBACK_DELAY (45 s), runs its publish job,
# sleeps again, then enters its normal loop (hs_v3/manager.py init_scheduler). The pause is a
# module constant (hs_v3/params.py) with no flag or environment variable, so it is set here. It
# only moves the first publish check: with no fetched descriptor yet that check publishes nothing
# and the next periodic check (every 5 min; 10 s with --is-testnet) publishes.
# The image's entrypoint passes ONIONBALANCE_INITIAL_DELAY (validated there); the Onionbalance
# interop test runs this file from the checkout. Not named onionbalance.py: its directory is first
# on sys.path, and the package of that name must be the one imported.
import sys
from importlib.metadata import distribution

from onionbalance.hs_v3 import params

params.INITIAL_CALLBACK_DELAY = int(sys.argv[1])
sys.argv = ['onionbalance'] + sys.argv[2:]
main = next(
    e for e in distribution('Onionbalance').entry_points if e.group == 'console_scripts' and e.name == 'onionbalance'
).load()
sys.exit(main())
