"""Delta nights at load: rows repeating an earlier night of the state are duplicates; a missing night stops."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from pipelines.config import load_settings
from pipelines.nightly import RunPaths, stage_load
from pipelines.warehouse import StagedStateError, Warehouse

NIGHT1, NIGHT2, NIGHT4 = date(2026, 6, 30), date(2026, 7, 1), date(2026, 7, 3)
HEADER = "loan_id,customer_id,installment_no,due_date,amount_due,paid_date,amount_paid\n"


def _call(call_id: str, started_at: str) -> str:
    return json.dumps({"call_id": call_id, "customer_id": "C1", "started_at": started_at, "direction": "outbound",
                       "duration_s": 60, "turns": [{"speaker": "customer", "text": "下周五还"}]},
                      ensure_ascii=False) + "\n"


def _landing(folder: Path, repayments: list[str], calls: list[str], delta: bool) -> Path:
    folder.mkdir(parents=True)
    (folder / "repayments.csv").write_text(HEADER + "".join(row + "\n" for row in repayments), encoding="utf-8")
    (folder / "calls.jsonl").write_text("".join(calls), encoding="utf-8")
    if delta:
        (folder / "_DELTA").touch()
    return folder


def _load(tmp_path: Path, landing: Path, as_of: date) -> None:
    stage_load(RunPaths(landing, tmp_path / "w.duckdb", tmp_path / "exports"), as_of, load_settings())


def test_a_delta_row_or_call_repeating_an_earlier_night_is_quarantined(tmp_path):
    _load(tmp_path, _landing(tmp_path / "n1", ["L1,C1,1,2026-06-05,100.00,,", "L1,C1,2,2026-07-05,100.00,,"],
                             [_call("K1", "2026-06-29T10:00:00+08:00")], delta=False), NIGHT1)
    _load(tmp_path, _landing(tmp_path / "n2", ["L1,C1,1,2026-06-05,100.00,,",
                                               "L1,C1,1,2026-06-05,100.00,2026-07-01,100"],
                             [_call("K1", "2026-06-20T10:00:00+08:00"), _call("K2", "2026-07-01T10:00:00+08:00")],
                             delta=True), NIGHT2)
    with Warehouse(tmp_path / "w.duckdb").session(read_only=True) as session:
        quarantine = session.frame("select source_file, source_row, rule, detail from quarantine where as_of = $as_of "
                                   "order by source_file, source_row", {"as_of": NIGHT2})
        staged = session.frame("select count(*) as n from stg_repayments where as_of = $as_of", {"as_of": NIGHT2})
        calls = session.frame("select call_id from stg_calls where as_of = $as_of", {"as_of": NIGHT2})
        reconciled = session.frame("select * from load_reconciliation where as_of = $as_of", {"as_of": NIGHT2})
        kinds = session.frame("select as_of, landing_kind, staged_from from staged_nights order by as_of")
    assert quarantine.values.tolist() == [
        ["calls.jsonl", 1, "duplicate_call_id", "call_id 'K1' already loaded on 2026-06-30"],
        ["repayments.csv", 1, "duplicate_row", "duplicate of a row staged on 2026-06-30"],
    ]
    assert int(staged["n"].iloc[0]) == 1 and calls["call_id"].tolist() == ["K2"]
    assert (reconciled["rows_read"] == reconciled["rows_loaded"] + reconciled["rows_quarantined"]).all()
    assert kinds["landing_kind"].tolist() == ["snapshot", "delta"]
    assert [d.date() for d in kinds["staged_from"]] == [NIGHT1, NIGHT1]


def test_a_delta_night_after_a_missing_night_stops_before_writing(tmp_path):
    _load(tmp_path, _landing(tmp_path / "n1", ["L1,C1,1,2026-06-05,100.00,,"], [], delta=False), NIGHT1)
    with pytest.raises(StagedStateError, match="2026-07-01, 2026-07-02"):
        _load(tmp_path, _landing(tmp_path / "n4", ["L1,C1,1,2026-06-05,100.00,2026-07-03,100"], [], delta=True),
              NIGHT4)
    with Warehouse(tmp_path / "w.duckdb").session(read_only=True) as session:
        assert session.scalar("select count(*) from stg_repayments where as_of = $as_of", {"as_of": NIGHT4}) == 0


def test_a_delta_attempt_repeating_an_earlier_night_is_quarantined(tmp_path):
    import pandas as pd

    from pipelines.outreach import _store_attempts, checked_attempts

    first = {"customer_id": "C1", "attempted_at": "2026-06-30T09:00:00+08:00", "outcome": "no_answer"}
    same_instant = {**first, "attempted_at": "2026-06-30T01:00:00Z"}  # the same instant, written in UTC
    new = {**first, "attempted_at": "2026-07-01T09:00:00+08:00"}
    with Warehouse(tmp_path / "w.duckdb").session() as session:
        for night, kind in ((NIGHT1, "snapshot"), (NIGHT2, "delta")):
            session.replace_partition("landing_loads", night, pd.DataFrame({
                "landing_kind": [kind], "landing_dir": ["x"], "loaded_at": [pd.Timestamp("2026-07-02", tz="UTC")]}))
        _store_attempts(session, NIGHT1, checked_attempts([first]))
        _store_attempts(session, NIGHT2, checked_attempts([same_instant, new]))
        staged = session.frame("select as_of, attempted_at from stg_contact_attempts order by all")
        quarantine = session.frame("select source_row, rule, detail from quarantine where as_of = $as_of",
                                   {"as_of": NIGHT2})
        reconciled = session.frame("select rows_read, rows_loaded, rows_quarantined from load_reconciliation "
                                   "where as_of = $as_of", {"as_of": NIGHT2})
    assert len(staged) == 2 and staged["as_of"].dt.date.tolist() == [NIGHT1, NIGHT2]
    assert quarantine.values.tolist() == [[1, "duplicate_row",
                                           "same customer and time as an attempt staged on 2026-06-30"]]
    assert reconciled.values.tolist() == [[2, 1, 1]]
