"""Entry point of the ``restate`` console script."""

from __future__ import annotations

import sys


def main() -> None:
    print("restate: the command tree is not there yet", file=sys.stderr)
    sys.exit(2)
