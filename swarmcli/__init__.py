"""swarm: train swarms of tiny neural networks that differ only in their initial weights."""

from swarmcli.results import load

__all__ = ["load"]
__version__ = "0.1.0"
