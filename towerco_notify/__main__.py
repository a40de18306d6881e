"""`python -m towerco_notify`: the same command line as `towerco-notify`."""

import sys

from towerco_notify.cli import main

sys.exit(main())
