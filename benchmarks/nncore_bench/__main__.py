"""``python -m nncore_bench``: the same as ``nncore bench``."""
import sys

from .cli import main

sys.exit(main())
