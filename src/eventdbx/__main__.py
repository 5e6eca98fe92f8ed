"""`python -m eventdbx …` runs the dbx CLI (the daemon re-executes itself this way)."""

from eventdbx.cli.main import main

main()
