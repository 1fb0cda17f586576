"""`python -m greenai` is the `greenai` command."""

from greenai.cli.main import main

main()
