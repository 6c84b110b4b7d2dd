"""Load-stage throughput next to plain DuckDB ``read_csv`` on the same repayments file, side by side.

Usage: python bench/bench_load.py [--customers N] [--repeats R]
Prints rows/s for both and their ratio (medians over R alternating runs). Asserts nothing.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import duckdb

from pipelines.demo import write_demo_data
from pipelines.loading import load_landing
from pipelines.warehouse import Warehouse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="postloan-bench-") as tmp:
        demo = write_demo_data(Path(tmp) / "demo", customers=args.customers)
        csv = demo.landing_dir / "repayments.csv"
        rows = sum(1 for _ in csv.open(encoding="utf-8")) - 1
        plain_times, stage_times, sql_times = [], [], []
        for repeat in range(args.repeats):
            plain_db = Path(tmp) / f"plain-{repeat}.duckdb"
            started = time.perf_counter()
            con = duckdb.connect(str(plain_db))
            con.execute(f"create table t as select * from read_csv('{csv}')")
            con.close()
            plain_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            load_landing(demo.landing_dir, Warehouse(Path(tmp) / f"stage-{repeat}.duckdb"), demo.as_of)
            stage_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            load_landing(demo.landing_dir, Warehouse(Path(tmp) / f"sql-{repeat}.duckdb"), demo.as_of,
                         contract_engine="duckdb")
            sql_times.append(time.perf_counter() - started)
        plain, stage = statistics.median(plain_times), statistics.median(stage_times)
        in_sql = statistics.median(sql_times)
        print(f"repayments.csv: {rows} rows, {csv.stat().st_size / 1e6:.1f} MB; calls.jsonl and customers.csv "
              f"also loaded by the stage; medians of {args.repeats} runs")
        print(f"{'method':<44}{'seconds':>10}{'rows/s':>14}")
        print(f"{'plain duckdb read_csv into a table':<44}{plain:>10.2f}{rows / plain:>14,.0f}")
        print(f"{'load_landing (rules, quarantine, contracts)':<44}{stage:>10.2f}{rows / stage:>14,.0f}")
        print(f"{'load_landing, contracts translated to SQL':<44}{in_sql:>10.2f}{rows / in_sql:>14,.0f}")
        print(f"ratio load_landing / read_csv: {stage / plain:.1f}x (Great Expectations, the default), "
              f"{in_sql / plain:.1f}x (contract_engine: duckdb)")


if __name__ == "__main__":
    main()
