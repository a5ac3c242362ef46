"""Usage: python -m umnist <stage> [options]  (same as the `umnist` console script)."""

from umnist.cli import main

raise SystemExit(main())
