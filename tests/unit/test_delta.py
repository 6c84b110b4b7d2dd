"""Delta landings: which partitions make up a night's state, and the file difference of two extracts."""

from datetime import date

import pandas as pd
import pytest

from pipelines.delta import DELTA_MARKER, write_delta_landing
from pipelines.nightly import landing_kind
from pipelines.warehouse import StagedStateError, Warehouse, staged_from_of, write_new_lines

D1, D2, D3, D4 = (date(2026, 7, day) for day in (1, 2, 3, 4))


def test_a_snapshot_night_stands_alone():
    assert staged_from_of(D3, {D1: "snapshot", D2: "delta", D3: "snapshot"}) == D3


def test_a_night_without_a_recorded_load_counts_as_a_snapshot():
    assert staged_from_of(D2, {D1: "snapshot"}) == D2


def test_a_delta_night_starts_at_the_latest_snapshot_before_it():
    kinds = {D1: "snapshot", D2: "snapshot", D3: "delta", D4: "delta"}
    assert staged_from_of(D4, kinds) == D2
    assert staged_from_of(D3, kinds) == D2


def test_deltas_without_any_snapshot_start_at_the_first_load():
    assert staged_from_of(D3, {D1: "delta", D2: "delta", D3: "delta"}) == D1


def test_a_missing_night_between_the_snapshot_and_a_delta_is_refused():
    with pytest.raises(StagedStateError, match="2026-07-02"):
        staged_from_of(D3, {D1: "snapshot", D3: "delta"})


def test_the_session_and_the_staged_nights_view_agree(tmp_path):
    warehouse = Warehouse(tmp_path / "w.duckdb")
    with warehouse.session() as session:
        for night, kind in ((D1, "snapshot"), (D2, "delta"), (D3, "delta"), (D4, "snapshot")):
            session.replace_partition("landing_loads", night, pd.DataFrame({
                "landing_kind": [kind], "landing_dir": ["x"], "loaded_at": [pd.Timestamp("2026-07-05", tz="UTC")]}))
        view = session.frame("select as_of, staged_from from staged_nights order by as_of")
        assert [session.staged_from(night) for night in (D1, D2, D3, D4)] == list(view["staged_from"].dt.date)
        assert session.scalar("select count(*) from stg_repayments where as_of between $staged_from and $as_of",
                              {"as_of": D3}) == 0
        assert list(view["staged_from"].dt.date) == [D1, D1, D1, D4]


def test_new_lines_are_a_multiset_difference_in_current_order(tmp_path):
    (tmp_path / "a.csv").write_text('h,x\n1,"a,b"\n2,c\n2,c\n3,d\n', encoding="utf-8")
    (tmp_path / "b.csv").write_text('h,x\n1,"a,b"\n2,c\n4,"q ""z"""\n2,c\n2,c\n3,d\n5,e\n', encoding="utf-8")
    assert write_new_lines(tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv", header=True) == 3
    assert (tmp_path / "c.csv").read_text(encoding="utf-8") == 'h,x\n4,"q ""z"""\n2,c\n5,e\n'


def test_a_delta_folder_holds_the_new_lines_and_the_marker(tmp_path):
    previous, current, out = tmp_path / "p", tmp_path / "c", tmp_path / "d"
    previous.mkdir()
    current.mkdir()
    (previous / "repayments.csv").write_text("loan_id,paid\nL1,\n", encoding="utf-8")
    (current / "repayments.csv").write_text("loan_id,paid\nL1,\nL1,2026-07-02\n", encoding="utf-8")
    (previous / "calls.jsonl").write_text('{"call_id": "c1"}\n', encoding="utf-8")
    (current / "calls.jsonl").write_text('{"call_id": "c1"}\n{"call_id": "c2"}\n', encoding="utf-8")
    (current / "customers.csv").write_text("customer_id\nC1\n", encoding="utf-8")  # new file: copied whole
    (current / "_READY").touch()
    files = {file.name: file for file in write_delta_landing(previous, current, out)}
    assert (out / "repayments.csv").read_text(encoding="utf-8") == "loan_id,paid\nL1,2026-07-02\n"
    assert (out / "calls.jsonl").read_text(encoding="utf-8") == '{"call_id": "c2"}\n'
    assert (out / "customers.csv").read_text(encoding="utf-8") == "customer_id\nC1\n"
    assert (files["repayments.csv"].new_lines, files["calls.jsonl"].new_lines) == (1, 1)
    assert "contact_attempts.csv" not in files
    assert (out / "_READY").is_file()
    assert landing_kind(out) == "delta" and landing_kind(current) == "snapshot"
    assert landing_kind(current, "delta") == "delta"
    with pytest.raises(ValueError, match="landing.kind"):
        landing_kind(current, "partial")
    assert (out / DELTA_MARKER).is_file()
