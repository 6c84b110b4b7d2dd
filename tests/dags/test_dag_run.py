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
    dag = DagBag(dag_folder=str(DAGS)).dags["care_segments_nightly"]
    run = dag.test(
        # the 02:00 run on 1 July closes the interval that starts 30 June 02:00: business date 30 June
        logical_date=pendulum.datetime(2026, 7, 1, 2, 0, tz="Asia/Shanghai"),
        run_conf={"landing": str(demo.landing_dir), "warehouse": str(tmp_path / "wh.duckdb"),
                  "exports": str(tmp_path / "exports")},
    )
    assert str(run.state) in ("success", "DagRunState.SUCCESS")
    with Warehouse(tmp_path / "wh.duckdb").session(read_only=True) as session:
        dates = session.frame("select distinct as_of from care_segments")["as_of"].dt.date.tolist()
        in_scope = session.scalar("select count(*) from in_scope_customers where as_of = '2026-06-30'")
        segmented = session.scalar("select count(*) from care_segments where as_of = '2026-06-30'")
    assert dates == [date(2026, 6, 30)]
    assert segmented == in_scope > 0
    folder = tmp_path / "exports" / "2026-06-30"
    assert {"care_segments.csv", "care_segments.parquet", "care_segments.manifest.json"} <= {
        p.name for p in folder.iterdir()}
