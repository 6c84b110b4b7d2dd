"""DAG integrity: the file imports cleanly, wires the six stages in order, and does no work at parse time."""

import subprocess
import sys
from pathlib import Path

DAGS = Path(__file__).resolve().parents[2] / "dags"
HEAVY = ["duckdb", "great_expectations", "torch", "sentence_transformers", "onnxruntime", "hdbscan",
         "pandas", "pipelines.warehouse", "insights.embedding"]


def test_dagbag_has_no_import_errors_and_the_stages_in_order():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    dag = bag.dags.get("care_segments_nightly")
    assert dag is not None
    order = ["load", "behaviour", "embed", "call_insight", "segments", "export"]
    assert sorted(dag.task_ids) == sorted(order)
    for upstream, downstream in zip(order, order[1:], strict=False):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}
    assert dag.max_active_runs == 1 and not dag.catchup
    assert all(task.retries >= 1 for task in dag.tasks)


def test_parsing_the_dag_imports_nothing_heavy():
    code = (
        "import runpy, sys\n"
        f"runpy.run_path({str(DAGS / 'care_segments_nightly.py')!r})\n"
        f"loaded = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(loaded)\n"
        "sys.exit(1 if loaded else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"heavy modules imported at parse time: {result.stdout} {result.stderr[-2000:]}"


def test_the_dag_wires_exactly_the_pipeline_stages():
    import runpy

    from pipelines.nightly import STAGES

    assert runpy.run_path(str(DAGS / "care_segments_nightly.py"))["STAGES"] == list(STAGES)
