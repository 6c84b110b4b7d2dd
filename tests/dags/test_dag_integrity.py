"""DAG integrity: the file imports cleanly, wires the pipeline stages in order, and does no work at parse time."""

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

DAGS = Path(__file__).resolve().parents[2] / "dags"
DAG_FILE = DAGS / "care_segments_nightly.py"
HEAVY = ["duckdb", "great_expectations", "torch", "sentence_transformers", "onnxruntime", "hdbscan",
         "pandas", "pipelines.warehouse", "insights.embedding"]
FAN_OUT = ["embed_plan", "embed_shard"]  # the embed stage: plan -> mapped shards -> embed (the merge)


def _dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    dag = bag.dags.get("care_segments_nightly")
    assert dag is not None
    return dag


def test_dagbag_has_no_import_errors_and_the_stages_in_order():
    from pipelines.nightly import STAGES

    dag = _dag()
    order = list(STAGES)
    assert sorted(dag.task_ids) == sorted(["wait_for_landing", *order, *FAN_OUT])
    assert dag.get_task(order[0]).upstream_task_ids == {"wait_for_landing"}
    for upstream, downstream in zip(order, order[1:], strict=False):
        if downstream == "embed":
            assert dag.get_task("embed_plan").upstream_task_ids == {upstream}
            assert dag.get_task("embed_shard").upstream_task_ids == {"embed_plan"}
            assert dag.get_task("embed").upstream_task_ids == {"embed_shard"}
            assert str(dag.get_task("embed").trigger_rule) in ("none_failed", "TriggerRule.NONE_FAILED")
        else:
            assert dag.get_task(downstream).upstream_task_ids == {upstream}
    assert dag.max_active_runs == 1 and not dag.catchup


def test_every_task_retries_with_backoff_has_a_timeout_and_alerts_on_failure():
    dag = _dag()
    sensor = dag.get_task("wait_for_landing")
    assert sensor.mode == "reschedule" and sensor.timeout > 0
    for task in dag.tasks:
        assert task.on_failure_callback, task.task_id
        if task is sensor:
            continue
        assert task.retries >= 1 and task.retry_exponential_backoff, task.task_id
        assert task.execution_timeout is not None and task.execution_timeout <= timedelta(hours=3), task.task_id
    assert set(dag.params) >= {"as_of", "landing", "warehouse", "exports", "config", "full_refit"}


def test_parsing_the_dag_imports_nothing_heavy():
    code = (
        "import runpy, sys\n"
        f"runpy.run_path({str(DAG_FILE)!r})\n"
        f"loaded = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(loaded)\n"
        "sys.exit(1 if loaded else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"heavy modules imported at parse time: {result.stdout} {result.stderr[-2000:]}"


def _schedule_in_subprocess(env_overrides: dict) -> dict:
    code = (
        "import json, runpy\n"
        f"dag = runpy.run_path({str(DAG_FILE)!r})['care_segments_nightly']()\n"
        "t = dag.timetable\n"
        "print(json.dumps({'summary': t.expression, 'tz': str(t.timezone), 'dag_tz': str(dag.timezone)}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("POSTLOAN_SCHEDULE", "POSTLOAN_TIMEZONE")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**env, **env_overrides})
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_schedule_and_time_zone_come_from_the_environment():
    assert _schedule_in_subprocess({}) == {"summary": "0 2 * * *", "tz": "Asia/Shanghai", "dag_tz": "Asia/Shanghai"}
    assert _schedule_in_subprocess({"POSTLOAN_SCHEDULE": "30 3 * * 1-5", "POSTLOAN_TIMEZONE": "Asia/Jakarta"}) \
        == {"summary": "30 3 * * 1-5", "tz": "Asia/Jakarta", "dag_tz": "Asia/Jakarta"}


def test_the_dag_wires_exactly_the_pipeline_stages():
    import runpy

    from pipelines.nightly import STAGES

    assert runpy.run_path(str(DAG_FILE))["STAGES"] == list(STAGES)
