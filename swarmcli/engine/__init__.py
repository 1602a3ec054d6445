"""The engine: trains a `parts.CellGroup` (cells that share everything but widths, activations
and optimizer hyper-parameters) bee for bee as torch.nn + torch.optim would, in a few batched
kernels per epoch.

    parts.py      the input: small frozen parts (network, data, optimizer, loss, ...)
    layout.py     the flat [bees, P] parameter buffer and the initial draw
    gradients.py  each bee's loss and gradient, hand-derived or by autograd
    loop.py       the training loop: steps, early stopping, recording (`loop.train`)
    runtime.py    device, chunking, allocator, random generators

Nothing is imported here, so `from swarmcli.engine import parts` stays free of torch.
"""
