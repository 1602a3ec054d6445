"""`python -m swarmcli.collect ...`: the same as `swarm collect ...` (errors as one line)."""

import sys

from swarmcli import cli

cli.main(["collect", *sys.argv[1:]])
