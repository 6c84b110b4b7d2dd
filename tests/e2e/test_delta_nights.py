"""An incremental (delta) night gives the same answers as the full snapshot of the same night.

Night 2 of the demo is turned into a delta with ``write_delta_landing``; its snapshot is night 1's files plus
those new lines (an append-only extract). One warehouse loads night 1 then the snapshot, a copy of it after
night 1 loads the delta; every stage runs with the real embedding model.
"""

import shutil
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from pipelines.config import load_settings
from pipelines.delta import write_delta_landing
from pipelines.demo import write_demo_data, write_demo_night
from pipelines.nightly import RunPaths, run_nightly
from pipelines.warehouse import Warehouse

CUSTOMERS, SEED = 300, 5
COMPARED = {  # table -> columns that legitimately differ between two runs (wall-clock stamps, paths)
    "installment_status": (),
    "customer_behaviour": (),
    "in_scope_customers": (),
    "call_utterances": (),
    "call_insights": (),
    "promises": (),
    "care_segments": (),
    "care_actions": (),
}


def _appended_snapshot(night1: Path, delta: Path, out: Path) -> None:
    """Write ``out``: each of night 1's files followed by the delta's new lines (headers once)."""
    out.mkdir(parents=True)
    for source in night1.iterdir():
        if source.name.startswith("_"):
            continue
        lines = source.read_text(encoding="utf-8")
        added = (delta / source.name).read_text(encoding="utf-8").splitlines(keepends=True)
        header = source.suffix == ".csv"
        (out / source.name).write_text(lines + "".join(added[1:] if header else added), encoding="utf-8")


def _night2(warehouse: Path, as_of) -> dict[str, pd.DataFrame]:
    with Warehouse(warehouse).session(read_only=True) as session:
        return {table: session.frame(f"select * exclude (as_of{''.join(', ' + c for c in dropped)}) from {table} "
                                     "where as_of = $as_of order by all", {"as_of": as_of})
                for table, dropped in COMPARED.items()}


@pytest.mark.e2e
def test_a_delta_night_matches_its_snapshot(tmp_path):
    night1 = write_demo_data(tmp_path / "demo", customers=CUSTOMERS, seed=SEED)
    night2 = write_demo_night(tmp_path / "demo", CUSTOMERS, SEED, night1.as_of, 2)
    as_of2 = night1.as_of + timedelta(days=1)
    delta = tmp_path / "delta2"
    written = {file.name: file.new_lines for file in write_delta_landing(night1.landing_dir, night2.landing_dir, delta)}
    assert written["repayments.csv"] > 0 and written["calls.jsonl"] > 0
    snapshot = tmp_path / "snapshot2"
    _appended_snapshot(night1.landing_dir, delta, snapshot)

    settings = load_settings()
    full, incremental = tmp_path / "full.duckdb", tmp_path / "incremental.duckdb"
    run_nightly(RunPaths(night1.landing_dir, full, tmp_path / "exports-full"), night1.as_of, settings)
    shutil.copyfile(full, incremental)
    run_nightly(RunPaths(snapshot, full, tmp_path / "exports-full"), as_of2, settings)
    run_nightly(RunPaths(delta, incremental, tmp_path / "exports-incremental"), as_of2, settings)

    with Warehouse(incremental).session(read_only=True) as session:
        loaded = session.frame("select as_of, landing_kind from landing_loads order by as_of")
        delta_rows = session.scalar("select count(*) from stg_repayments where as_of = $as_of", {"as_of": as_of2})
    assert list(loaded["landing_kind"]) == ["snapshot", "delta"]
    assert delta_rows <= written["repayments.csv"]  # only the new rows were staged for night 2
    expected, got = _night2(full, as_of2), _night2(incremental, as_of2)
    for table in COMPARED:
        assert len(got[table]) > 0, table
        pd.testing.assert_frame_equal(got[table], expected[table], check_exact=False, rtol=1e-9, obj=table)
    name = f"{as_of2.isoformat()}/care_segments.csv"
    assert (tmp_path / "exports-incremental" / name).read_bytes() == (tmp_path / "exports-full" / name).read_bytes()
