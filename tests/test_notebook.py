"""examples/quickstart.ipynb runs top to bottom in a real Jupyter kernel (nbclient), at small
sizes set in its `parameters` cell, and shows what it says it shows."""

from __future__ import annotations

import base64
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import swarmcli

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "quickstart.ipynb"
SMALL = 'BEES = 3\nEPOCHS = 12\nRENDER = ["hive"]'


# A kernel that imports torch, Hydra, pandas and matplotlib and trains twice: ~20 s on a
# loaded 2-core machine, so with the slow tests (`pytest -m slow`, which CI runs).
@pytest.mark.slow
def test_quickstart_notebook_runs_and_shows_its_results(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    (params,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    params.source = SMALL
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = [o.data["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    face = next(h for h in html if "swarm run" in h)  # the Run's own HTML: table and hive
    assert "<table" in face and "median_loss" in face
    png = base64.b64decode(face.split("data:image/png;base64,", 1)[1].split('"', 1)[0])
    assert png.startswith(b"\x89PNG")
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 3  # loss bands, the bees' curves, the two runs' medians
    compared = next(h for h in html if "sgd+momentum" in h and "adam" in h)
    assert compared.count("<tr>") >= 9 + 1  # a row per cell
    runs = sorted((tmp_path / "outputs").glob("*/*"))
    assert len(runs) == 2  # both runs went to Hydra's outputs/DATE/TIME, beside the notebook


    a, b = (swarmcli.load(r) for r in runs)
    assert {a.config["optim"]["name"], b.config["optim"]["name"]} == {"sgd", "adam"}
    assert a.cell(width=10, activation="relu").loss[0, -1] != \
        b.cell(width=10, activation="relu").loss[0, -1]
