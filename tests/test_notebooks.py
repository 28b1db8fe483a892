"""Every notebook in notebooks/ runs top to bottom, so the notebooks cannot rot.

The code cells are concatenated (IPython magics and shell lines, ``%...`` / ``!...``, are skipped) and
executed in a fresh namespace under matplotlib's non-interactive Agg backend. The ``assert``s inside the
notebooks are the real checks; this test only makes them run. Notebooks are stored without outputs so
their diffs stay clean.
"""

import json
import os
import pathlib

os.environ["MPLBACKEND"] = "Agg"

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

NOTEBOOK_DIR = pathlib.Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))


def _load(path: pathlib.Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _code(notebook: dict) -> str:
    """The notebook's code cells as one script, without ``%`` magics and ``!`` shell lines."""
    cells = []
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code":
            continue
        lines = _source(cell).splitlines()
        cells.append("\n".join(line for line in lines if not line.lstrip().startswith(("%", "!"))))
    return "\n\n".join(cells) + "\n"


def test_notebooks_exist():
    assert NOTEBOOKS, f"no notebooks found in {NOTEBOOK_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_clean(path):
    notebook = _load(path)
    assert notebook["nbformat"] == 4
    kinds = [cell["cell_type"] for cell in notebook["cells"]]
    assert "markdown" in kinds, f"{path.name} has no markdown cell"
    assert "code" in kinds, f"{path.name} has no code cell"
    for i, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "code":
            assert not cell.get("outputs"), f"{path.name} cell {i} stores outputs; clear them"
            assert cell.get("execution_count") is None, f"{path.name} cell {i} stores an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path):
    code = compile(_code(_load(path)), str(path), "exec")
    namespace = {"__name__": "__main__"}
    try:
        exec(code, namespace)
    finally:
        plt.close("all")
    assert namespace, f"{path.name} did not run"
