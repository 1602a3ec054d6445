"""task=landscape: particles (bees whose parameters are a point) on loss surfaces.
`surfaces` (torch-free) defines and checks them, `particles` moves them with the batched
optimizers, `run` writes a run directory."""
