"""One whole run of the nightly DAG through Airflow's ``dag.test()`` on small demo data, real model."""

from datetime import date
from pathlib import Path

import pendulum
import pytest

from pipelines.demo import write_demo_data
from pipelines.warehouse import Warehouse

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def airflow_db():
    from airflow.utils.db import resetdb

    resetdb()


@pytest.mark.airflow
def test_dag_test_runs_every_stage_for_the_interval_date(airflow_db, tmp_path):
    from airflow.dag_processing.dagbag import DagBag

    demo = write_demo_data(tmp_path / "demo", customers=150, seed=3, as_of=date(2026, 6, 30))
    (demo.landing_dir / "_READY").touch()
    config = tmp_path / "small_shards.yaml"
    config.write_text("embedding: {batch_size: 16}\nembed_sharding: {shard_size: 100}\n", encoding="utf-8")
    dag = DagBag(dag_folder=str(DAGS)).dags["care_segments_nightly"]
    for task in dag.tasks:  # fail fast: dag.test() would sit out the production retry delays
        task.retries = 0
    run = dag.test(
        # the 02:00 run on 1 July closes the interval that starts 30 June 02:00: business date 30 June
        logical_date=pendulum.datetime(2026, 7, 1, 2, 0, tz="Asia/Shanghai"),
        run_conf={"landing": str(demo.landing_dir), "warehouse": str(tmp_path / "wh.duckdb"),
                  "exports": str(tmp_path / "exports"), "config": str(config)},
    )
    assert str(run.state) in ("success", "DagRunState.SUCCESS")
    with Warehouse(tmp_path / "wh.duckdb").session(read_only=True) as session:
        dates = session.frame("select distinct as_of from care_segments")["as_of"].dt.date.tolist()
        in_scope = session.scalar("select count(*) from in_scope_customers where as_of = '2026-06-30'")
        segmented = session.scalar("select count(*) from care_segments where as_of = '2026-06-30'")
        log = session.frame("select stage, status, rows_in, rows_out, model_id, policy_version, run_id "
                            "from run_log order by started_at")
        cached = session.scalar("select count(*) from embedding_cache")
    assert dates == [date(2026, 6, 30)]
    assert segmented == in_scope > 0
    folder = tmp_path / "exports" / "2026-06-30"
    assert {"care_segments.csv", "care_segments.parquet", "care_segments.manifest.json"} <= {
        p.name for p in folder.iterdir()}
    # the run log: every stage once, successful, from this Airflow run; the embedding fanned out over shards
    assert set(log["status"]) == {"success"} and log["run_id"].nunique() == 1
    assert not log["run_id"].iloc[0].startswith("cli-")
    shards = log[log["stage"].str.startswith("embed_shard[")]
    assert len(shards) >= 2 and shards["rows_out"].sum() == cached
    stages = [s for s in log["stage"] if not s.startswith("embed_shard[")]
    assert stages[:3] == ["load", "behaviour", "embed_plan"] and "embed" in stages and "export" in stages
    assert log.loc[log["stage"] == "segments", "rows_out"].item() == segmented
    assert log.loc[log["stage"] == "segments", "policy_version"].item()
    assert log.loc[log["stage"] == "embed", "model_id"].item().startswith("use_onnx:")
    assert not (tmp_path / "wh.embed_shards" / "2026-06-30").exists()


@pytest.mark.airflow
def test_a_task_that_fails_for_good_leaves_a_readable_alert_in_run_log(airflow_db, tmp_path):
    from airflow.dag_processing.dagbag import DagBag

    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "_READY").touch()  # marked complete, but the producer forgot the files
    dag = DagBag(dag_folder=str(DAGS)).dags["care_segments_nightly"]
    for task in dag.tasks:
        task.retries = 0
    run = dag.test(logical_date=pendulum.datetime(2026, 7, 1, 2, 0, tz="Asia/Shanghai"),
                   run_conf={"landing": str(landing), "warehouse": str(tmp_path / "wh.duckdb"),
                             "exports": str(tmp_path / "exports")})
    assert str(run.state) in ("failed", "DagRunState.FAILED")
    with Warehouse(tmp_path / "wh.duckdb").session(read_only=True) as session:
        log = session.frame("select stage, status, as_of, error from run_log order by started_at, status")
    assert sorted(zip(log["stage"], log["status"], strict=True)) == [("load", "alert"), ("load", "failed")]
    alert = log.loc[log["status"] == "alert", "error"].item()
    assert alert.startswith("ALERT postloan-care: care_segments_nightly.load failed for as-of 2026-06-30")
    assert "repayments" in alert and set(log["as_of"].dt.date) == {date(2026, 6, 30)}
