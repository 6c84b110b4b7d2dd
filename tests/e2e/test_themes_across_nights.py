"""Themes, promises and sub-reasons over several nights through the ``postloan`` CLI with the real model."""

import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from pipelines.warehouse import Warehouse

FIRST, NEXT, WEEK_LATER = date(2026, 6, 30), date(2026, 7, 1), date(2026, 7, 7)


def postloan(*args: str) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name("postloan")), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def run_night(out: Path, as_of: date) -> subprocess.CompletedProcess:
    return postloan("run", "--landing", str(out / "landing"), "--warehouse", str(out / "warehouse.duckdb"),
                    "--exports", str(out / "exports"), "--as-of", as_of.isoformat())


def frame(out: Path, sql: str, **params: object) -> pd.DataFrame:
    with Warehouse(out / "warehouse.duckdb").session(read_only=True) as session:
        return session.frame(sql, params)


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    out = tmp_path_factory.mktemp("nights")
    demo = postloan("demo", "--customers", "400", "--seed", "5", "--out", str(out))
    run_night(out, NEXT)
    return out, demo


@pytest.mark.e2e
def test_first_night_names_themes_and_reports_outliers(nights):
    out, demo = nights
    assert "Sub-reason accuracy" in demo.stdout and "Themes: first_fit" in demo.stdout
    runs = frame(out, "select * from call_theme_runs where as_of = $d", d=FIRST).iloc[0]
    assert runs["refit_reason"] == "first_fit" and runs["themes"] >= 3
    assert runs["outlier_share_after"] <= runs["outlier_share_before"]
    named = frame(out, "select * from call_themes where as_of = $d", d=FIRST)
    assert named["is_new"].all() and (named["quote_1"] != "").all()
    terms = frame(out, "select * from call_theme_terms where as_of = $d", d=FIRST)
    assert set(terms["language"]) == {"zh", "en"}
    assert not set(terms["term"]) & {"那个", "就是", "嗯", "呃", "the", "i'm"}


@pytest.mark.e2e
def test_next_night_assigns_to_the_same_themes_without_refitting(nights):
    out, _ = nights
    runs = frame(out, "select * from call_theme_runs where as_of = $d", d=NEXT).iloc[0]
    assert runs["refit_reason"] == "" and runs["fitted_on"].date() == FIRST
    assert frame(out, "select distinct as_of from theme_centroids")["as_of"].dt.date.tolist() == [FIRST]
    both = frame(out, "select a.call_id, a.theme_id as first, b.theme_id as next from call_theme_members a "
                      "join call_theme_members b using (call_id) where a.as_of = $f and b.as_of = $n", f=FIRST, n=NEXT)
    assert len(both) > 50 and (both["first"] == both["next"]).all()


@pytest.mark.e2e
def test_promises_are_extracted_and_judged_the_next_night(nights):
    out, _ = nights
    found = frame(out, "select * from promises where as_of = $d", d=FIRST)
    assert len(found) > 0 and set(found["language"]) == {"zh", "en"}
    judged = frame(out, "select * from promise_outcomes where as_of = $d", d=NEXT)
    assert judged["promise_id"].is_unique and set(judged["promise_id"]) == set(found["promise_id"])
    assert set(judged["status"]) <= {"kept", "partly_kept", "broken", "pending"}
    behaviour = frame(out, "select sum(promises_made) as made from customer_behaviour where as_of = $d", d=NEXT)
    assert int(behaviour["made"].iloc[0]) == len(judged)


@pytest.mark.e2e
def test_rerun_gives_the_same_themes_and_a_scheduled_refit_keeps_ids(nights):
    out, _ = nights
    query = "select * exclude (as_of) from call_theme_members where as_of = $d order by call_id"
    before = frame(out, query, d=NEXT)
    run_night(out, NEXT)
    pd.testing.assert_frame_equal(before, frame(out, query, d=NEXT))
    run_night(out, WEEK_LATER)
    runs = frame(out, "select * from call_theme_runs where as_of = $d", d=WEEK_LATER).iloc[0]
    assert runs["refit_reason"] == "schedule"
    state = frame(out, "select * from theme_centroids where as_of = $d", d=WEEK_LATER)
    assert state["matched_from"].notna().sum() >= len(state) // 2
