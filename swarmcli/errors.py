"""The one exception users see. A module of its own, with no imports, so every layer (formula
parser, splits, renderers, collect) can raise it without pulling in Hydra or torch."""

# The user's HYDRA_FULL_ERROR, before `swarm` sets its own (collect passes it on to reruns).
USER_FULL_ERROR = "SWARM_USER_FULL_ERROR"


class SwarmError(ValueError):
    """A user-facing error: the CLI prints it as one line and exits with status 2."""


class Refused(BaseException):
    """A SwarmError raised inside a Hydra callback (preflight.py). Hydra turns an Exception from a
    callback into a warning and carries on, so a refusal crosses Hydra as a BaseException; the CLI
    prints its SwarmError as one line."""
