"""`python -m sequence_archiver_cli`: the same as the `sequence-archiver` console script."""

from __future__ import annotations

import sys

from sequence_archiver_cli.main import main

sys.exit(main())
