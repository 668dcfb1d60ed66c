"""`python -m lrfp` runs the CLI."""

from lrfp.cli import main

main()
