"""Every stage's DuckDB sessions get the configured memory cap."""

from datetime import date

import pytest

from pipelines.run_log import recorded_stage
from pipelines.warehouse import Warehouse, checked_memory_limit


@pytest.fixture(autouse=True)
def _no_global_limit():
    yield
    Warehouse.memory_limit = None


def test_a_stage_caps_duckdb_memory_from_the_settings(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    settings = {"warehouse": {"duckdb_memory_limit": "512MB"}}
    with recorded_stage(warehouse, "run-1", date(2026, 7, 1), "behaviour", settings):
        with Warehouse(warehouse).session() as session:
            limit = session.scalar("select current_setting('memory_limit')")
    assert limit.replace(" ", "") in ("488.2MiB", "512.0MB", "488.2MB")


def test_a_bad_memory_limit_is_a_clear_error(tmp_path):
    assert checked_memory_limit(" 3GB ") == "3GB"
    Warehouse.memory_limit = "lots"
    with pytest.raises(ValueError, match="3GB or 512MB"):
        with Warehouse(tmp_path / "w.duckdb").session():
            pass
