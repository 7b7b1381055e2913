#!/usr/bin/env python
"""Front end of `smoot-train` (smoot_ext/cli/train.py), for running from a checkout: it imports the
installed smoot_ext (`pip install .`), never the checkout's sources."""
import sys

from smoot_ext.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
