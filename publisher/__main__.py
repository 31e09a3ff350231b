"""`python -m publisher`: the command line."""

from publisher.cli import main

raise SystemExit(main())
