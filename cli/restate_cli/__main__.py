"""``python -m restate_cli``."""

from restate_cli.main import main

main()
