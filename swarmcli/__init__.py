"""swarm: train swarms of tiny neural networks that differ only in their initial weights."""

__all__ = ["load", "run"]
__version__ = "0.1.0"


def __getattr__(name: str):
    """`swarmcli.load` and `swarmcli.run` on first use: the `swarm` command imports this
    package, and numpy (results/) or torch (run) would slow every command that needs neither."""
    if name == "load":
        from swarmcli.results import load

        return load
    if name == "run":  # torch, Hydra: loaded when a notebook first trains
        from swarmcli.api import run

        return run
    raise AttributeError(f"module 'swarmcli' has no attribute {name!r}")
