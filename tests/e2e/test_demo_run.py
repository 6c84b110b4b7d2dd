"""The two-night demo end to end through the ``postloan`` CLI with the real embedding model, then a rerun of night 1."""

import json
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest

from insights.text import contains_pii
from pipelines.evaluate import evaluation
from pipelines.warehouse import Warehouse

AS_OF = "2026-06-30"
SECOND = "2026-07-01"
TABLES = ["stg_repayments", "stg_calls", "stg_call_turns", "quarantine", "customer_behaviour",
          "in_scope_customers", "call_insights", "care_segments", "care_actions", "stg_contact_attempts"]


def postloan(*args: str) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name("postloan")), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def snapshot(warehouse: Path) -> dict[str, pd.DataFrame]:
    with Warehouse(warehouse).session(read_only=True) as session:
        return {t: session.frame(f"select * exclude (as_of) from {t} order by all") for t in TABLES}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    result = postloan("demo", "--customers", "600", "--seed", "11", "--nights", "2", "--out", str(out))
    return out, result


@pytest.mark.e2e
def test_demo_prints_summary_and_evaluation(demo_run):
    out, result = demo_run
    for expected in ("Customers per care segment", "Quarantined by rule", "Evaluation (with_calls)",
                     "Evaluation (without_calls)", "macro-F1", "Care actions", "Contact-rule outcomes",
                     "Outcomes of 2026-06-30's actions by 2026-07-01", "Segment changes after"):
        assert expected in result.stdout


@pytest.mark.e2e
def test_every_input_row_is_loaded_or_quarantined_with_the_expected_rule(demo_run):
    out, _ = demo_run
    with Warehouse(out / "warehouse.duckdb").session(read_only=True) as session:
        reconciliation = session.frame("select * from load_reconciliation")
        quarantine = session.frame("select source_file, source_row, rule from quarantine")
    assert (reconciliation["rows_read"] == reconciliation["rows_loaded"] + reconciliation["rows_quarantined"]).all()
    expected = pd.read_csv(out / "expected_quarantine.csv")
    got = set(quarantine.itertuples(index=False, name=None))
    missing = [row for row in expected.itertuples(index=False, name=None) if row not in got]
    assert not missing


@pytest.mark.e2e
def test_exports_match_the_warehouse_and_carry_no_pii(demo_run):
    out, _ = demo_run
    folder = out / "exports" / AS_OF
    manifest = json.loads((folder / "care_segments.manifest.json").read_text())
    csv = pd.read_csv(folder / "care_segments.csv", dtype=str, keep_default_na=False)
    parquet = pd.read_parquet(folder / "care_segments.parquet")
    with Warehouse(out / "warehouse.duckdb").session(read_only=True) as session:
        in_db = session.scalar("select count(*) from care_segments where as_of = $as_of", {"as_of": AS_OF})
    assert manifest["rows"] == len(csv) == len(parquet) == in_db > 0
    assert {"customer_id", "segment", "confidence", "action", "reasons", "evidence"} <= set(csv.columns)
    assert not any(contains_pii(value) for value in csv.to_numpy().ravel())


@pytest.mark.e2e
def test_demo_segments_score_well_against_the_truth(demo_run):
    out, _ = demo_run
    truth = pd.read_csv(out / "truth.csv", dtype=str, keep_default_na=False)
    with Warehouse(out / "warehouse.duckdb").session(read_only=True) as session:
        segments = session.frame("select * from care_segments where as_of = $as_of", {"as_of": date(2026, 6, 30)})
    scores = evaluation(truth, segments)
    macro = {group: float(frame.set_index("segment").loc["macro", "f1"]) for group, frame in scores.items()}
    assert macro["with_calls"] >= 0.7, macro
    assert macro["without_calls"] >= 0.6, macro


@pytest.mark.e2e
def test_rerunning_the_date_changes_nothing_and_embeds_nothing_new(demo_run):
    out, _ = demo_run
    before = snapshot(out / "warehouse.duckdb")
    result = postloan("run", "--landing", str(out / "landing"), "--warehouse", str(out / "warehouse.duckdb"),
                      "--exports", str(out / "exports"), "--as-of", AS_OF)
    assert " 0 newly embedded" in result.stdout
    after = snapshot(out / "warehouse.duckdb")
    for table in TABLES:
        pd.testing.assert_frame_equal(before[table], after[table], obj=table)


@pytest.mark.e2e
def test_each_night_has_actions_and_channel_exports_that_keep_the_contact_window(demo_run):
    out, _ = demo_run
    with Warehouse(out / "warehouse.duckdb").session(read_only=True) as session:
        counts = session.frame("select s.as_of, count(*) as segments, count(a.customer_id) as actions from "
                               "care_segments s left join care_actions a using (as_of, customer_id) group by all")
    assert len(counts) == 2 and (counts["segments"] == counts["actions"]).all()
    for night in (AS_OF, SECOND):
        folder = out / "exports" / night
        assert (folder / "_SUCCESS").is_file()
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["policy_version"] and manifest["contact_rules_version"] and manifest["model_id"]
        for name in ("call_list", "sms_list", "app_push", "review_queue", "care_segments"):
            frame = pd.read_csv(folder / f"{name}.csv", dtype=str, keep_default_na=False)
            assert manifest["exports"][name]["rows"] == len(frame) > 0, name
            assert not any(contains_pii(value) for value in frame.to_numpy().ravel()), name
        calls = pd.read_csv(folder / "call_list.csv", dtype=str, keep_default_na=False)
        assert (calls["route"] == "standard").all()
        for local, window in zip(calls["next_contact_at_local"], calls["contact_window"], strict=True):
            start, end = window.split("-")
            moment = datetime.fromisoformat(local)
            assert moment.date() > date.fromisoformat(night)
            assert start <= moment.strftime("%H:%M") < end


@pytest.mark.e2e
def test_outcome_views_follow_the_first_night_into_the_second(demo_run):
    out, _ = demo_run
    with Warehouse(out / "warehouse.duckdb").session(read_only=True) as session:
        followed = session.frame("select * from action_outcomes where as_of = $as_of", {"as_of": AS_OF})
        versus = session.frame("select * from treatment_vs_control")
        changes = session.scalar("select count(*) from segment_change_log where changed_on = $d", {"d": SECOND})
    assert len(followed) > 0 and (followed["followed_on"].dt.date == date(2026, 7, 1)).all()
    assert followed["is_cured"].any() and followed["amount_recovered"].sum() > 0
    assert set(versus["segment"]) >= {"hardship", "forgetful"} and changes > 0
