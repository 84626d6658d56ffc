"""``python -m otpadmin``: see :mod:`otpadmin`."""

import os
import sys

from otpadmin import main

try:
    status = main()
    sys.stdout.flush()
except BrokenPipeError:
    # The reader went away (``... | head``): stop quietly, as other command line tools do.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    status = 1
raise SystemExit(status)
