"""The DAG under Airflow's own scheduler: api-server + scheduler + dag-processor on free local ports.

One run is triggered through the REST API (v2, token from the simple auth manager), one date is backfilled
through the REST API; both must give exactly the care segments ``postloan run`` gives for those dates.
Every process started here runs in its own process group, and every group is stopped, also on failure.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from pipelines.config import load_settings
from pipelines.demo import write_demo_data
from pipelines.nightly import RunPaths, run_nightly
from pipelines.warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
DAG_ID = "care_segments_nightly"
BACKFILLED, TRIGGERED = date(2026, 6, 29), date(2026, 6, 30)
PASSWORD = "scheduler-test-password"
WAIT_S = 480  # a bound for a hung run on a loaded machine, not a timing assertion


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _airflow_env(home: Path) -> dict[str, str]:
    api_port, log_port = _free_port(), _free_port()
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({"admin": PASSWORD}), encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "POSTLOAN_"))}
    return {
        **env,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": "scheduler-test-jwt-secret-0123456789abcdef",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(log_port),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        # no cron-created runs: only the run and the backfill this test asks for
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR": "True",
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
    }


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a process group: SIGTERM, then SIGKILL after 20 s."""
    if process.poll() is not None:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # children left behind in the group
        except ProcessLookupError:
            pass
        return
    for sig, grace in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


class Airflow:
    """A running Airflow: its REST base URL, a bearer token and the log folder."""

    def __init__(self, base_url: str, home: Path) -> None:
        self.base_url = base_url
        self.home = home
        self.client = httpx.Client(base_url=base_url, timeout=30)

    def login(self) -> None:
        response = self.client.post("/auth/token", json={"username": "admin", "password": PASSWORD})
        response.raise_for_status()
        self.client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.client.request(method, f"/api/v2{path}", **kwargs)
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    def wait_for(self, what: str, check: Any, seconds: float = WAIT_S) -> Any:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = check()
            if found:
                return found
            time.sleep(2)
        raise AssertionError(f"gave up waiting for {what} after {seconds} s; logs in {self.home}")

    def finished_run(self, run_id: str) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            run = self.call("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")
            return run if run["state"] in ("success", "failed") else None

        run = self.wait_for(f"run {run_id}", done)
        if run["state"] != "success":
            tasks = self.call("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")["task_instances"]
            states = {t["task_id"]: t["state"] for t in tasks}
            raise AssertionError(f"run {run_id} {run['state']}: {states}; logs in {self.home / 'logs'}")
        return run


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Airflow]:
    home = tmp_path_factory.mktemp("airflow_home")
    env = _airflow_env(home)
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for component in (["api-server"], ["scheduler"], ["dag-processor"]):
            out = (home / f"{component[0]}.log").open("wb")
            processes.append(subprocess.Popen([AIRFLOW, *component], env=env, stdout=out,
                                              stderr=subprocess.STDOUT, start_new_session=True, cwd=home))
        server = Airflow(env["AIRFLOW__API__BASE_URL"], home)

        def healthy() -> bool:
            for process in processes:
                assert process.poll() is None, f"an Airflow process exited; logs in {home}"
            try:
                return server.client.get("/api/v2/monitor/health").status_code == 200
            except httpx.HTTPError:
                return False

        server.wait_for("the api-server", healthy)
        server.login()
        server.wait_for("the DAG to be parsed",
                        lambda: server.client.get(f"/api/v2/dags/{DAG_ID}").status_code == 200)
        server.call("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False})
        yield server
    finally:
        for process in reversed(processes):
            _stop(process)


def _demo_landing(root: Path, as_of: date) -> None:
    demo = write_demo_data(root / as_of.isoformat(), customers=120, seed=5, as_of=as_of)
    (demo.landing_dir / "_READY").touch()


def _segments(warehouse: Path, as_of: date) -> pd.DataFrame:
    with Warehouse(warehouse).session(read_only=True) as session:
        return session.frame("select * from care_segments where as_of = $as_of order by customer_id",
                             {"as_of": as_of})


@pytest.mark.scheduler
@pytest.mark.airflow
def test_triggered_and_backfilled_runs_match_postloan_run(airflow: Airflow, tmp_path: Path) -> None:
    for as_of in (BACKFILLED, TRIGGERED):
        _demo_landing(tmp_path / "landing", as_of)
    config = tmp_path / "small_shards.yaml"
    config.write_text("embedding: {batch_size: 16}\nembed_sharding: {shard_size: 100}\n", encoding="utf-8")
    conf = {"landing": str(tmp_path / "landing" / "{as_of}" / "landing"),
            "warehouse": str(tmp_path / "airflow" / "wh.duckdb"), "exports": str(tmp_path / "airflow" / "exports"),
            "config": str(config)}

    # a backfill through the REST API (what `airflow backfill create` does): the run whose data interval
    # starts 29 June 02:00 handles business date 29 June
    backfill = airflow.call("POST", "/backfills", json={
        "dag_id": DAG_ID, "from_date": "2026-06-29T02:00:00+08:00", "to_date": "2026-06-29T02:00:00+08:00",
        "max_active_runs": 1, "dag_run_conf": conf, "reprocess_behavior": "none"})

    def backfill_runs() -> list[dict[str, Any]]:
        runs = airflow.call("GET", f"/dags/{DAG_ID}/dagRuns", params={"run_type": "backfill"})["dag_runs"]
        return [run for run in runs if run["run_type"] == "backfill"]

    backfilled = airflow.wait_for("the backfill run", backfill_runs)
    assert len(backfilled) == 1, (backfill, backfilled)
    airflow.finished_run(backfilled[0]["dag_run_id"])
    # a run triggered through the REST API: a manual run at 1 July 02:00 closes the interval of 30 June
    triggered = airflow.call("POST", f"/dags/{DAG_ID}/dagRuns",
                             json={"logical_date": "2026-07-01T02:00:00+08:00", "conf": conf})
    airflow.finished_run(triggered["dag_run_id"])

    # the same dates, in the same order, through `postloan run` (run_nightly)
    settings = load_settings(config)
    for as_of in (BACKFILLED, TRIGGERED):
        run_nightly(RunPaths(landing=tmp_path / "landing" / as_of.isoformat() / "landing",
                             warehouse=tmp_path / "cli" / "wh.duckdb", exports=tmp_path / "cli" / "exports"),
                    as_of, settings)
    for as_of in (BACKFILLED, TRIGGERED):
        through_airflow = _segments(tmp_path / "airflow" / "wh.duckdb", as_of)
        through_cli = _segments(tmp_path / "cli" / "wh.duckdb", as_of)
        assert len(through_airflow) > 0
        pd.testing.assert_frame_equal(through_airflow, through_cli)
        assert (tmp_path / "airflow" / "exports" / as_of.isoformat() / "care_segments.csv").read_bytes() == \
            (tmp_path / "cli" / "exports" / as_of.isoformat() / "care_segments.csv").read_bytes()

    with Warehouse(tmp_path / "airflow" / "wh.duckdb").session(read_only=True) as session:
        log = session.frame("select run_id, as_of, stage, status, worker from run_log")
    assert set(log["status"]) == {"success"}
    assert set(log["run_id"]) == {triggered["dag_run_id"], backfilled[0]["dag_run_id"]}
    shards = log[log["stage"].str.startswith("embed_shard[")]
    assert shards.groupby("as_of").size().min() >= 2  # the embedding fanned out under the real scheduler
