"""`python -m pizza_devcluster` runs the CLI."""

import sys

from .cli import main

sys.exit(main())
