"""`python -m opencx.cli`: the same as the `opencx` command."""

from __future__ import annotations

import sys

from opencx.cli import main

sys.exit(main())
