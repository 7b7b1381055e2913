#!/usr/bin/env python
"""Front end of `smoot-reproduce` (smoot_ext/cli/reproduce.py), for running from a checkout: it imports the
installed smoot_ext (`pip install .`), never the checkout's sources."""
import sys

from smoot_ext.cli.reproduce import main

if __name__ == "__main__":
    sys.exit(main())
