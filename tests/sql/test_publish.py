"""Published read-only snapshots and the analyst views: an analyst holding the published file open never blocks the
nightly run and keeps its snapshot; the views bind on every warehouse and compute what they say."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from pipelines.config import load_settings
from pipelines.demo import write_demo_data
from pipelines.nightly import RunPaths, run_nightly
from pipelines.publish import (
    analyst_view_names,
    create_analyst_views,
    publish_warehouse,
    published_current,
    published_dir,
    stale_snapshots,
    timeline_sql,
)
from pipelines.warehouse import Warehouse

NIGHTS = [date(2026, 6, 29), date(2026, 6, 30)]
VIEWS = ["behaviour_by_segment", "customer_timeline", "outcomes_by_segment", "segment_mix_by_night",
         "theme_overview"]

ANALYST = textwrap.dedent("""
    import sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    newest = "select max(as_of)::varchar from care_segments"
    print(con.execute(newest).fetchall()[0][0], flush=True)
    sys.stdin.readline()  # hold the file open while the nightly run completes and publishes
    print(con.execute(newest).fetchall()[0][0], con.execute("select count(*) from care_segments").fetchall()[0][0],
          flush=True)
""")


def _run_night(out: Path, night: date, settings: dict) -> None:
    demo = write_demo_data(out / night.isoformat(), customers=150, seed=3, as_of=night)
    run_nightly(RunPaths(landing=demo.landing_dir, warehouse=out / "warehouse.duckdb", exports=out / "exports"),
                night, settings)


def _newest_night(path: Path) -> str:
    with Warehouse(path).session(read_only=True) as session:
        return str(session.scalar("select max(as_of)::varchar from care_segments"))


@pytest.fixture(scope="module")
def two_nights(tmp_path_factory):
    """Night 1; then night 2 runs while an analyst process holds the published current.duckdb open."""
    out = tmp_path_factory.mktemp("publish")
    settings = load_settings(overrides={"publish": {"keep": 2}})
    _run_night(out, NIGHTS[0], settings)
    current = out / "published" / "current.duckdb"
    analyst = subprocess.Popen([sys.executable, "-c", ANALYST, str(current)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        before = analyst.stdout.readline().strip()
        _run_night(out, NIGHTS[1], settings)  # raises if the analyst's open file got in the way
        after, err = analyst.communicate("go on\n", timeout=120)
    finally:
        if analyst.poll() is None:
            analyst.kill()
            analyst.wait()
    return out, settings, before, after.strip(), err


def test_an_analyst_holding_current_open_neither_blocks_the_run_nor_sees_it_change(two_nights):
    out, _, before, after, err = two_nights
    assert before == "2026-06-29", err
    held_night, held_rows = after.split()
    assert held_night == "2026-06-29"  # the open connection keeps its snapshot...
    assert _newest_night(out / "published" / "current.duckdb") == "2026-06-30"  # ...a new one sees the new night
    with Warehouse(out / "published" / "current.duckdb").session(read_only=True) as session:
        assert session.scalar("select count(*) from care_segments where as_of = '2026-06-29'") == int(held_rows)
    assert _newest_night(out / "warehouse.duckdb") == "2026-06-30"


def test_one_snapshot_per_night_and_current_is_the_newest(two_nights):
    out, *_ = two_nights
    folder = out / "published"
    assert sorted(p.name for p in folder.iterdir()) == [
        "current.duckdb", "warehouse-2026-06-29.duckdb", "warehouse-2026-06-30.duckdb"]
    assert _newest_night(folder / "warehouse-2026-06-29.duckdb") == "2026-06-29"
    assert (folder / "current.duckdb").read_bytes() == (folder / "warehouse-2026-06-30.duckdb").read_bytes()


def test_republishing_keeps_the_last_n_and_replaces_the_same_night(two_nights, tmp_path):
    out, settings, *_ = two_nights
    warehouse = tmp_path / "copy.duckdb"
    warehouse.write_bytes((out / "warehouse.duckdb").read_bytes())
    keep_two = {**settings, "publish": {"dir": str(tmp_path / "pub"), "keep": 2}}
    for night in [*NIGHTS, date(2026, 7, 1), date(2026, 7, 1)]:
        report = publish_warehouse(warehouse, night, keep_two)
    assert sorted(p.name for p in (tmp_path / "pub").iterdir()) == [
        "current.duckdb", "warehouse-2026-06-30.duckdb", "warehouse-2026-07-01.duckdb"]
    assert report.current == tmp_path / "pub" / "current.duckdb" and sorted(report.views) == VIEWS
    assert not list((tmp_path / "pub").glob(".*tmp*"))


def test_the_views_exist_in_the_warehouse_and_the_snapshot(two_nights):
    out, *_ = two_nights
    for path in (out / "warehouse.duckdb", out / "published" / "current.duckdb"):
        with Warehouse(path).session(read_only=True) as session:
            views = session.frame("select view_name from duckdb_views() where schema_name = 'analyst'")
            assert sorted(views["view_name"]) == VIEWS
            for view in VIEWS:
                assert session.scalar(f"select count(*) from analyst.{view}") > 0, view


def test_segment_mix_counts_every_segment_row_and_the_change(two_nights):
    out, *_ = two_nights
    with Warehouse(out / "published" / "current.duckdb").session(read_only=True) as session:
        mix = session.frame("select * from analyst.segment_mix_by_night order by segment, as_of")
        counts = session.frame("select as_of, count(*) as n from care_segments group by all")
    assert mix.groupby("as_of")["customers"].sum().to_dict() == counts.set_index("as_of")["n"].to_dict()
    second = mix[mix["as_of"].dt.date == NIGHTS[1]]
    assert (second["change_vs_previous_night"] == second["customers"] - second["previous_customers"]).all()
    assert mix.groupby("as_of")["share_of_night"].sum().round(2).eq(1.0).all()


def test_the_timeline_and_theme_overview_cover_the_calls(two_nights):
    out, *_ = two_nights
    with Warehouse(out / "published" / "current.duckdb").session(read_only=True) as session:
        kinds = session.frame("select distinct event_type from analyst.customer_timeline")["event_type"]
        calls = session.scalar("select count(distinct call_id) from stg_calls")
        timeline_calls = session.scalar("select count(*) from analyst.customer_timeline where event_type = 'call'")
        themed = session.scalar("select sum(calls) from analyst.theme_overview where as_of = '2026-06-30'")
        insights = session.scalar("select count(*) from call_insights where as_of = '2026-06-30'")
    assert {"installment_due", "payment", "call", "segment"} <= set(kinds)
    assert timeline_calls == calls and themed == insights


def _seeded(tmp_path: Path) -> Warehouse:
    """Two nights, three customers: one cures, one rolls from M1 to M2, one is not seen again."""
    warehouse = Warehouse(tmp_path / "seeded.duckdb")
    segments = pd.DataFrame({
        "as_of": [date(2026, 6, 1)] * 3 + [date(2026, 6, 2)],
        "customer_id": ["cures", "rolls", "gone", "rolls"],
        "segment": ["forgetful", "hardship", "hardship", "hardship"],
        "confidence": 0.9, "action": ["reminder_before_due"] + ["caring_sms+deferral_offer"] * 3,
        "reasons": "r", "evidence": "e",
    })
    behaviour = pd.DataFrame({
        "as_of": [date(2026, 6, 1)] * 3 + [date(2026, 6, 2)] * 2,
        "customer_id": ["cures", "rolls", "gone", "cures", "rolls"],
        "days_past_due": [3, 30, 10, 0, 31], "dpd_bucket": ["M1", "M1", "M1", "current", "M2"],
        "is_overdue": [True, True, True, False, True],
        "amount_overdue": [100.0, 500.0, 50.0, 0.0, 800.0],
    })
    with warehouse.session() as session:
        session.insert_frame("care_segments", segments)
        session.execute("create table customer_behaviour as select * from behaviour_frame limit 0".replace(
            "behaviour_frame", "(select * from (values (null::date, null::varchar, null::bigint, null::varchar, "
            "null::boolean, null::double)) t(as_of, customer_id, days_past_due, dpd_bucket, is_overdue, "
            "amount_overdue))"))
        session.insert_frame("customer_behaviour", behaviour)
    return warehouse


def test_outcomes_follow_each_customer_to_the_next_night(tmp_path):
    warehouse = _seeded(tmp_path)
    with warehouse.session() as session:
        report = create_analyst_views(session)
        outcomes = session.frame("select * from analyst.outcomes_by_segment where as_of = '2026-06-01' "
                                 "order by segment")
    assert "outcomes_by_segment" in report.created and "theme_overview" in report.skipped
    forgetful, hardship = outcomes.to_dict("records")
    assert (forgetful["cured"], forgetful["cure_rate"], forgetful["amount_recovered"]) == (1, 1.0, 100.0)
    assert (hardship["customers"], hardship["followed_customers"], hardship["rolled_forward"]) == (2, 1, 1)
    assert hardship["treatment"] == "caring_sms+deferral_offer" and pd.isna(hardship["experiment_group"])
    assert (hardship["cure_rate"], hardship["roll_rate"], hardship["amount_recovered"]) == (0.0, 1.0, 0.0)


def test_views_whose_tables_are_missing_are_left_out_and_the_timeline_takes_promises(tmp_path):
    warehouse = _seeded(tmp_path)
    with warehouse.session() as session:
        session.execute("drop table promises")  # a warehouse from before promises were extracted
        without = create_analyst_views(session)
        session.run_model("warehouse/schema")
        session.insert_frame("promises", pd.DataFrame([{
            "as_of": date(2026, 6, 2), "promise_id": "CALL-1:3:1", "call_id": "CALL-1", "customer_id": "rolls",
            "turn_no": 3, "call_on": date(2026, 6, 2), "promised_on": date(2026, 6, 15), "amount": 200.0,
            "is_partial": False, "basis": "day_of_month", "phrase": "15号还", "language": "zh"}]))
        with_promises = create_analyst_views(session)
        events = session.frame("select event_type, amount from analyst.customer_timeline order by all")
    assert "customer_timeline/promises" in without.skipped
    assert "customer_timeline" in with_promises.created
    assert "customer_timeline/promises" not in with_promises.skipped
    assert set(events["event_type"]) == {"segment", "promise"}  # installments, payments, calls: no tables here
    assert sorted(with_promises.created) == ["customer_timeline", "outcomes_by_segment", "segment_mix_by_night"]


def test_pure_helpers():
    assert stale_snapshots(["c", "b", "a"], 2) == ["a"]
    assert stale_snapshots(["c", "b", "a"], 0) == ["b", "a"]  # the newest always stays
    assert stale_snapshots([], 3) == []
    assert timeline_sql({"b": "select 2 as x", "a": "select 1 as x"}).index("select 1") < \
        timeline_sql({"b": "select 2 as x", "a": "select 1 as x"}).index("select 2")
    with pytest.raises(ValueError):
        timeline_sql({})
    assert sorted(analyst_view_names()) == VIEWS
    assert published_dir(Path("/data/wh.duckdb"), None) == Path("/data/published")
    assert published_dir(Path("/data/wh.duckdb"), "/srv/pub") == Path("/srv/pub")
    assert published_current({"publish": {"dir": None}}, Path("/data/wh.duckdb")) == \
        Path("/data/published/current.duckdb")


def test_publish_and_report_are_the_last_stages_of_the_job_and_of_the_dag():
    import runpy

    from pipelines.nightly import STAGES

    dag_file = Path(__file__).resolve().parents[2] / "dags" / "care_segments_nightly.py"
    assert list(STAGES)[-2:] == ["publish", "report"]
    assert runpy.run_path(str(dag_file))["STAGES"][-2:] == ["publish", "report"]
