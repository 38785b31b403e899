"""``python -m bench``: measure the portal and write bench/results/latest.{json,md}."""

import sys

from bench.run import main

sys.exit(main())
