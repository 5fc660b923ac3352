"""The notebooks run top to bottom on the bundled data, and are stored without outputs.

A notebook's cell tagged ``parameters`` (papermill's convention) sets ``DEMO``, the work directory
of ``make demo``; the test runs them with ``DEMO`` pointed at the session's one demo run (a cell
inserted after the tagged one), so the chain is not run again for each notebook.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")


def test_there_are_four_notebooks():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04"]


def _parameters_cell(book) -> int | None:
    """The index of the cell tagged ``parameters``, if any."""
    return next((i for i, c in enumerate(book.cells) if "parameters" in c.metadata.get("tags", [])), None)


def test_notebooks_using_the_demo_take_it_as_a_parameter():
    for path in NOTEBOOKS:
        book = nbformat.read(path, as_version=4)
        if any("DEMO" in c.source for c in book.cells):
            tagged = _parameters_cell(book)
            assert tagged is not None and "DEMO = " in book.cells[tagged].source, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_without_outputs(path):
    book = nbformat.read(path, as_version=4)
    for cell in book.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{path.name}: clear outputs before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_runs_top_to_bottom(path, monkeypatch, request):
    book = nbformat.read(path, as_version=4)
    tagged = _parameters_cell(book)
    if tagged is not None:
        cmd, _ = request.getfixturevalue("demo_run")
        book.cells.insert(tagged + 1, nbformat.v4.new_code_cell(f"DEMO = Path({cmd[-1]!r})"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    client = nbclient.NotebookClient(
        book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}
    )
    client.execute()
    errors = [o for c in book.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
