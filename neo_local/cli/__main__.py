"""``python -m neo_local.cli``."""

import sys

from neo_local.cli.main import main

sys.exit(main())
