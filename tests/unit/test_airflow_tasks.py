from datetime import UTC, date, datetime

import pytest

from pipelines.airflow_tasks import as_of_for_run, run_paths


def test_as_of_is_the_local_date_the_interval_starts_on():
    # 2026-06-30 02:00 in Shanghai is 2026-06-29 18:00 UTC
    start = datetime(2026, 6, 29, 18, 0, tzinfo=UTC)
    assert as_of_for_run(start, "", "Asia/Shanghai") == date(2026, 6, 30)
    assert as_of_for_run(start, "", "UTC") == date(2026, 6, 29)
    assert as_of_for_run(None, "2026-01-02", "UTC") == date(2026, 1, 2)
    with pytest.raises(ValueError, match="as_of"):
        as_of_for_run(None, "", "UTC")
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        as_of_for_run(start, "30/06/2026", "UTC")


def test_run_paths_from_params_then_environment(monkeypatch):
    monkeypatch.setenv("POSTLOAN_WAREHOUSE", "/w/wh.duckdb")
    monkeypatch.setenv("POSTLOAN_EXPORTS", "/e")
    paths = run_paths({"landing": "/l/{as_of}", "warehouse": ""}, date(2026, 6, 30))
    assert str(paths.landing) == "/l/2026-06-30" and str(paths.warehouse) == "/w/wh.duckdb"
    monkeypatch.delenv("POSTLOAN_EXPORTS")
    with pytest.raises(ValueError, match="POSTLOAN_EXPORTS"):
        run_paths({"landing": "/l", "warehouse": "/w"}, date(2026, 6, 30))


def test_full_refit_makes_the_night_a_refit_night_and_keeps_the_other_settings():
    from pipelines.airflow_tasks import settings_for_run
    from pipelines.config import load_settings

    defaults = load_settings()
    refit = settings_for_run({"full_refit": True})
    assert refit["insight"]["themes"]["refit_every_days"] == 1
    assert refit["insight"]["themes"]["drift_threshold"] == defaults["insight"]["themes"]["drift_threshold"]
    assert settings_for_run({"full_refit": False}) == defaults
