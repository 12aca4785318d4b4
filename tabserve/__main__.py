"""`python -m tabserve`: the `tabserve` command where it is not installed (e.g. inside the image)."""

import sys

from tabserve.cli.main import main

sys.exit(main())
