"""`python -m train ...` is `tabserve train ...`."""

import sys

from tabserve.cli.main import main

sys.exit(main(["train", *sys.argv[1:]]))
