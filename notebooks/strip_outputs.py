"""Clear the outputs and execution counts of the notebooks given (default: every notebook in this folder).

Notebooks are committed without outputs (tests/e2e/test_notebooks.py checks it): `make strip-notebooks`.
"""

import sys
from pathlib import Path

import nbformat


def main(paths: list[str]) -> int:
    """Strip each notebook in place; print the ones that changed."""
    targets = [Path(p) for p in paths] or sorted(Path(__file__).parent.glob("*.ipynb"))
    for path in targets:
        notebook = nbformat.read(path, as_version=4)
        changed = False
        for cell in notebook.cells:
            if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None):
                cell.outputs, cell.execution_count, changed = [], None, True
        if changed:
            nbformat.write(notebook, path)
            print(f"stripped {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
