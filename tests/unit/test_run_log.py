"""The run log: one row per stage attempt, failures and alerts included, readable in DuckDB and in the log."""

from datetime import date
from types import SimpleNamespace

import pandas as pd
import pytest

from pipelines.airflow_tasks import alert_on_failure
from pipelines.config import load_settings
from pipelines.run_log import RowCounts, recorded_stage, row_counts
from pipelines.warehouse import Warehouse

AS_OF = date(2026, 6, 30)


def _log(warehouse):
    with Warehouse(warehouse).session(read_only=True) as session:
        return session.frame("select * from run_log order by started_at")


def test_row_counts_read_each_stage_report():
    files = pd.DataFrame({"rows_read": [10, 5], "rows_loaded": [9, 5], "rows_quarantined": [1, 0]})
    assert row_counts("load", SimpleNamespace(files=files)) == RowCounts(15, 14, 1)
    embed = row_counts("embed", SimpleNamespace(utterances=7, new_embeddings=3))
    assert (embed.rows_in, embed.rows_out) == (7, 3)
    assert row_counts("embed_shard[2]", SimpleNamespace(texts=4, vectors=4)).rows_out == 4
    assert row_counts("segments", SimpleNamespace(customers=12)).rows_out == 12
    assert row_counts("unknown", object()).rows_out is None


def test_a_stage_attempt_is_recorded_with_counts_lineage_and_errors(tmp_path, caplog):
    warehouse = tmp_path / "wh.duckdb"
    settings = load_settings()
    with recorded_stage(warehouse, "cli-1", AS_OF, "segments", settings) as outcome:
        outcome["report"] = SimpleNamespace(customers=3)
    with pytest.raises(RuntimeError, match="boom"), recorded_stage(warehouse, "cli-1", AS_OF, "export", settings):
        raise RuntimeError("boom")
    log = _log(warehouse)
    assert list(log["stage"]) == ["segments", "export"] and list(log["status"]) == ["success", "failed"]
    assert log["rows_out"].iloc[0] == 3 and "RuntimeError: boom" in log["error"].iloc[1]
    assert log["policy_version"].iloc[0] and log["settings_version"].iloc[0] == settings["version"]
    assert log["model_id"].iloc[0].startswith("use_onnx:") and log["taxonomy_version"].iloc[0]
    assert (log["ended_at"] >= log["started_at"]).all() and log["worker"].str.contains("/").all()
    assert "run_log FAILED export as_of=2026-06-30" in caplog.text


def test_the_failure_callback_writes_a_readable_alert(tmp_path, caplog):
    warehouse = tmp_path / "wh.duckdb"
    context = {
        "ti": SimpleNamespace(task_id="load", map_index=-1, try_number=3, log_url="http://af/log", start_date=None),
        "dag": SimpleNamespace(dag_id="care_segments_nightly", timezone="Asia/Shanghai"),
        "run_id": "scheduled__2026-06-29T18:00:00+00:00",
        "data_interval_start": None,
        "params": {"as_of": "2026-06-30", "landing": str(tmp_path), "warehouse": str(warehouse),
                   "exports": str(tmp_path / "exports")},
        "exception": FileNotFoundError("repayments.csv is missing"),
    }
    alert_on_failure(context)
    log = _log(warehouse)
    assert list(log["status"]) == ["alert"] and log["stage"].item() == "load" and log["try_number"].item() == 3
    assert "care_segments_nightly.load failed for as-of 2026-06-30" in log["error"].item()
    assert "FileNotFoundError: repayments.csv is missing" in log["error"].item()
    assert "ALERT postloan-care" in caplog.text
