"""The analysts' notebooks run top to bottom on a two-night demo warehouse, in the venv's kernel; none is committed
with outputs."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import nbformat
import pytest

from pipelines.config import load_settings
from pipelines.demo import write_demo_data
from pipelines.nightly import RunPaths, run_nightly

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NAMES = ["01_segment_overview", "02_call_themes", "03_outcomes"]
NIGHTS = [date(2026, 6, 29), date(2026, 6, 30)]


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("notebooks")
    settings = load_settings()
    for night in NIGHTS:
        demo = write_demo_data(out / night.isoformat(), customers=150, seed=3, as_of=night)
        run_nightly(RunPaths(landing=demo.landing_dir, warehouse=out / "warehouse.duckdb",
                             exports=out / "exports"), night, settings)
    return out / "published" / "current.duckdb"


def _with_parameters(notebook, **values) -> nbformat.NotebookNode:
    """Insert a cell after the one tagged ``parameters`` that overrides it (papermill's convention)."""
    position = next(i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", []))
    lines = [f"{name} = {value!r}" for name, value in values.items()]
    injected = nbformat.v4.new_code_cell("\n".join(lines + ["import sys", "print(sys.executable)"]))
    injected.metadata["tags"] = ["injected-parameters"]
    notebook.cells.insert(position + 1, injected)
    return notebook


def _text_outputs(cell) -> str:
    return "".join(output.get("text", "") + "".join(str(v) for v in output.get("data", {}).values())
                   for output in cell.get("outputs", []))


@pytest.mark.e2e
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_on_the_published_demo_warehouse(name, published):
    from nbclient import NotebookClient

    notebook = _with_parameters(nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4),
                                warehouse=str(published), as_of="2026-06-30")
    NotebookClient(notebook, kernel_name="python3", timeout=300,
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    injected = next(c for c in notebook.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert _text_outputs(injected).strip() == sys.executable, "the notebook ran in another Python"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.get("execution_count") for cell in code)
    assert not [o for cell in code for o in cell.outputs if o.output_type == "error"]
    assert "looking at 2026-06-30" in _text_outputs(code[2])
    figures = [o for cell in code for o in cell.outputs if "image/png" in o.get("data", {})]
    assert figures, "the notebook drew no chart"


@pytest.mark.parametrize("name", NAMES)
def test_notebooks_are_committed_without_outputs_and_query_the_analyst_views(name):
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    stripped = [not cell.outputs and cell.execution_count is None for cell in code]
    assert all(stripped), f"{name}: strip the outputs before committing (make strip-notebooks)"
    assert sum("parameters" in cell.metadata.get("tags", []) for cell in code) == 1
    assert "analyst." in "".join(cell.source for cell in code)
