"""The command line: python -m digitrec train | evaluate | predict IMAGE... | models."""

from digitrec.cli import main

raise SystemExit(main())
