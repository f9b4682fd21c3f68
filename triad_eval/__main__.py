"""`python -m triad_eval` runs the `triad` command line."""

import sys

from triad_eval.cli import main

sys.exit(main())
