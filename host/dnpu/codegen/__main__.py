"""`python -m dnpu.codegen`: regenerate (or, with --check, verify) every generated file."""

import sys

from dnpu.codegen import main

sys.exit(main())
