"""``python -m nncore``: the same as the ``nncore`` command."""
import sys

from .cli import main

sys.exit(main())
