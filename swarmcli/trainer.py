"""The training loop every task with a net shares: the groups trained one after another, each
cell cut out of its group and saved at once (so a run stopped later keeps it), its statistics
handed to the trackers and its summary.csv rows collected. runner.py (regression) and
classify.py call it; what differs between them comes in as `scores`."""

from __future__ import annotations

import sys

from swarmcli import plan, results
from swarmcli.engine import loop


def train_cells(writer, groups, axis_names, *, tracker=None, scores=None):
    """Train each (cells, engine group) pair in turn and save each cell as soon as it is cut
    out, so a run stopped later keeps it; `writer.rows` grows with summary.csv's rows as cells
    land (written by writer.complete, or writer.stop when a run stops). `scores(arrays)`
    (classification) adds per-bee arrays and final_* columns and gives the per-bee numbers
    cells are compared on; without it they are compared on final loss. Returns ({cell: final
    losses}, {cell: compared numbers}, diverged bees)."""
    from tqdm import tqdm

    groups = list(groups)
    finals, compared, diverged = {}, {}, 0
    first = groups[0][0][0].cfg
    total = sum(g.total_bees * g.epochs for _, g in groups)
    show = first.progress and sys.stderr.isatty()
    with tqdm(total=total, disable=not show, unit="bee-epoch", unit_scale=True,
              desc="training", leave=False) as bar:
        for cells_of_group, group in groups:
            res = loop.train(group, on_epochs=bar.update)
            for k, cell in enumerate(cells_of_group):
                arrays = plan.cell_arrays(group, res, k, cell.cfg.model.width)
                columns, compared[cell.index] = {}, None
                if scores is not None:
                    extra, columns, compared[cell.index] = scores(arrays)
                    arrays.update(extra)
                n_div = int((arrays["diverged_epoch"] >= 0).sum())
                diverged += n_div
                finals[cell.index] = arrays["loss"][:, -1].copy()
                if compared[cell.index] is None:
                    compared[cell.index] = finals[cell.index]
                writer.save_cell(cell.index, arrays, {"diverged": n_div})
                if tracker is not None:  # logger=...: the cell's loss statistics
                    tracker.cell(cell, arrays)
                for r in results.summary_rows(axis_names, cell.labels, cell.index, arrays):
                    writer.rows.append({**r, **{k: float(v[r["bee"]]) for k, v in columns.items()}})
            writer.claim_saved()
            del res, arrays  # the next group's recordings take their place (memory.py)
    return finals, compared, diverged
