"""The one exception users see. A module of its own, with no imports, so every layer (formula
parser, splits, renderers) can raise it without pulling in Hydra or torch."""


class SwarmError(ValueError):
    """A user-facing error: the CLI prints it as one line and exits with status 2."""
