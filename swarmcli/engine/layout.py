"""The flat parameter buffer: all parameters of a group live in one [bees, P] tensor, and each
layer's W [bees, in, out] and b [bees, 1, out] (and batch-norm gamma, beta) are views into it, so
an optimizer step updates everything in a few kernels whatever the depth."""

from __future__ import annotations

import torch

from swarmcli import nn
from swarmcli.engine.parts import CellGroup


class Layout:
    """Where each tensor sits in the flat [bees, P] buffer: per layer W then b, then batch-norm
    gamma and beta of each hidden layer."""

    def __init__(self, shapes: list[tuple[int, int]], batch_norm: bool = False):
        self.shapes = shapes
        self.entries = []  # (offset, shape)
        off = 0
        for fi, fo in shapes:
            for shape in ((fi, fo), (1, fo)):
                self.entries.append((off, shape))
                off += shape[0] * shape[1]
        self.norm_entries = []
        if batch_norm:
            for _, fo in shapes[:-1]:
                for _ in range(2):
                    self.norm_entries.append((off, (1, fo)))
                    off += fo
        self.size = off
        self._layers: dict = {}

    @classmethod
    def of(cls, group: CellGroup) -> Layout:
        net = group.network
        return cls(nn.layer_shapes(net.depth, net.width, net.in_dim), net.batch_norm)

    def _view(self, flat, entry):
        off, (a, b) = entry
        return flat[:, off:off + a * b].view(flat.shape[0], a, b)

    def views(self, flat: torch.Tensor):
        """(W, b) views [bees, in, out], [bees, 1, out] into a flat [bees, P] tensor."""
        v = [self._view(flat, e) for e in self.entries]
        return list(zip(v[0::2], v[1::2]))

    def layers(self, flat: torch.Tensor):
        """(W, b, W^T, b^T) views of each layer, built once per buffer: the fused path's
        persistent parameter and gradient buffers then cost no view ops per epoch (a buffer's
        views keep its memory, so no other buffer can reuse its address). Under torch.compile
        views are free, and built inside the graph."""
        if torch.compiler.is_compiling():
            return [(w, b, w.mT, b.mT) for w, b in self.views(flat)]
        key = (flat.data_ptr(), flat.shape, flat.stride(), flat.dtype, flat.device)
        if key not in self._layers:
            self._layers[key] = [(w, b, w.mT, b.mT) for w, b in self.views(flat)]
        return self._layers[key]

    def norm_views(self, flat: torch.Tensor):
        """(gamma, beta) of each hidden layer, [bees, 1, width] each."""
        v = [self._view(flat, e) for e in self.norm_entries]
        return list(zip(v[0::2], v[1::2]))

    def __repr__(self):
        return f"Layout(shapes={self.shapes}, P={self.size})"


def initial_flat(group: CellGroup) -> torch.Tensor:
    """Each cell's bees drawn at the cell's own width (so pairing holds), padded to the group's,
    float64 [total bees, P]."""
    net, bees = group.network, group.bees
    cells = []
    for width in net.widths:
        params = nn.init_params(group.seed, net.depth, width, bees, net.init, net.init_std,
                                net.init_bounds, net.in_dim)
        params = nn.pad_params(params, net.width)
        parts = [t.reshape(bees, -1) for wb in params for t in wb]
        if net.batch_norm:  # gamma 1, beta 0, as torch.nn.BatchNorm1d
            for _ in range(net.depth):
                parts += [torch.ones(bees, net.width, dtype=torch.float64),
                          torch.zeros(bees, net.width, dtype=torch.float64)]
        cells.append(torch.cat(parts, dim=1))
    return torch.cat(cells)
