"""`python -m pipelines.cli`: the `pathlink` command line."""

from pipelines.cli import main

main()
