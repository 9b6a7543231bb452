"""`python -m riskconsole ...`: the same CLI as the `riskconsole` script."""

from riskconsole.cli import main

raise SystemExit(main())
