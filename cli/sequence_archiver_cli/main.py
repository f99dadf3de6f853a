"""Entry point of the `sequence-archiver` console script."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run the CLI (placeholder until the commands land)."""
    del argv
    print("sequence-archiver: no commands yet", file=sys.stderr)
    return 2
