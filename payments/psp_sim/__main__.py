"""``python -m payments.psp_sim`` is ``payments psp-sim``."""

import sys

from payments.psp_sim.main import main

raise SystemExit(main(sys.argv[1:]))
