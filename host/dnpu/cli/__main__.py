"""`python -m dnpu.cli ...`: the `dnpu` command."""

import sys

from dnpu.cli import main

sys.exit(main())
