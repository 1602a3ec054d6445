"""swarm: train swarms of tiny neural networks that differ only in their initial weights."""

__all__ = ["load"]
__version__ = "0.1.0"


def __getattr__(name: str):
    """`swarmcli.load` on first use: the `swarm` command imports this package, and numpy (which
    results/ needs) would slow every command that never reads a run."""
    if name == "load":
        from swarmcli.results import load

        return load
    raise AttributeError(f"module 'swarmcli' has no attribute {name!r}")
