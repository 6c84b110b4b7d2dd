"""Time every stage of a full nightly run at a chosen scale, each stage in its own process (as Airflow runs it).

Usage: python bench/bench_scale.py --scale S|M|L [--customers N] [--workdir DIR]
Prints a table (stage, rows, seconds, rows/s, peak RSS of the stage's process) and side-by-side ratios measured
in the same run: the load stage vs plain DuckDB read_csv of the same file, and the embed stage vs the bare
model's encode on the same texts. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCALES = {"S": 10_000, "M": 200_000, "L": 1_000_000}
POSTLOAN = str(Path(sys.executable).with_name("postloan"))

# the table whose as-of partition counts a stage's output rows
STAGE_ROWS = {
    "load": "select sum(rows_read) from load_reconciliation where as_of = $as_of",
    "behaviour": "select count(*) from customer_behaviour where as_of = $as_of",
    "embed": "select count(*) from call_utterances where as_of = $as_of",
    "call_insight": "select count(*) from call_insights where as_of = $as_of",
    "segments": "select count(*) from care_segments where as_of = $as_of",
    "export": "select count(*) from care_segments where as_of = $as_of",
}


def _timed_process(command: list[str]) -> tuple[float, float]:
    """Run a command; return (seconds, peak RSS in MB of that process)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        error = process.stderr.read().decode()[-3000:] if process.stderr else ""
        raise SystemExit(f"failed: {' '.join(command)}\n{error}")
    return seconds, usage.ru_maxrss / 1024


def _rows(warehouse: Path, stage: str, as_of: object) -> int:
    from pipelines.warehouse import Warehouse

    query = STAGE_ROWS.get(stage)
    if query is None:
        return 0
    with Warehouse(warehouse).session(read_only=True) as session:
        return int(session.scalar(query, {"as_of": as_of}) or 0)


def _plain_read_csv(csv: Path, workdir: Path) -> float:
    code = ("import duckdb,sys; con=duckdb.connect(sys.argv[2]); "
            "con.execute(f\"create table t as select * from read_csv('{sys.argv[1]}')\"); con.close()")
    target = workdir / "plain.duckdb"
    target.unlink(missing_ok=True)
    seconds, _ = _timed_process([sys.executable, "-c", code, str(csv), str(target)])
    return seconds


def _bare_encode(warehouse: Path, as_of: object) -> tuple[float, int]:
    """Time the bare model's encode on the distinct texts the embed stage encoded (fresh process, fresh model)."""
    code = (
        "import sys, time, duckdb\n"
        "from insights.embedding import UseOnnxEmbedder\n"
        "con = duckdb.connect(sys.argv[1], read_only=True)\n"
        "texts = [r[0] for r in con.execute('select distinct text from call_utterances where as_of = ?',"
        " [sys.argv[2]]).fetchall()]\n"
        "con.close()\n"
        "model = UseOnnxEmbedder()\n"
        "started = time.perf_counter(); model.encode(texts); print(time.perf_counter() - started, len(texts))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(warehouse), str(as_of)], capture_output=True, text=True,
                         check=True).stdout.split()
    return float(out[0]), int(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=list(SCALES), default="S")
    parser.add_argument("--customers", type=int, default=None, help="override the scale's customer count")
    parser.add_argument("--workdir", type=Path, default=None, help="keep data here (default: a temp dir)")
    args = parser.parse_args()
    customers = args.customers or SCALES[args.scale]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="postloan-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    from pipelines.demo import write_demo_data
    from pipelines.nightly import STAGES

    started = time.perf_counter()
    demo = write_demo_data(workdir / "demo", customers=customers)
    generated = time.perf_counter() - started
    warehouse, exports = workdir / "warehouse.duckdb", workdir / "exports"
    warehouse.unlink(missing_ok=True)
    shutil.rmtree(exports, ignore_errors=True)
    csv = demo.landing_dir / "repayments.csv"
    print(f"scale {args.scale}: {customers} customers, repayments.csv {csv.stat().st_size / 1e6:.0f} MB "
          f"(generated in {generated:.0f} s), cores {os.cpu_count()}")
    rows_by_stage: dict[str, tuple[int, float, float]] = {}
    for stage in STAGES:
        seconds, rss = _timed_process([POSTLOAN, "-q", "run", "--landing", str(demo.landing_dir), "--warehouse",
                                       str(warehouse), "--exports", str(exports), "--as-of",
                                       demo.as_of.isoformat(), "--stage", stage])
        rows_by_stage[stage] = (_rows(warehouse, stage, demo.as_of), seconds, rss)
    total = sum(seconds for _, seconds, _ in rows_by_stage.values())
    print(f"\n{'stage':<14}{'rows':>12}{'seconds':>10}{'rows/s':>12}{'peak RSS MB':>13}")
    for stage, (rows, seconds, rss) in rows_by_stage.items():
        print(f"{stage:<14}{rows:>12,}{seconds:>10.1f}{rows / seconds if seconds else 0:>12,.0f}{rss:>13,.0f}")
    print(f"{'total':<14}{'':>12}{total:>10.1f}")
    plain = statistics.median(_plain_read_csv(csv, workdir) for _ in range(3))
    load_rows, load_seconds, _ = rows_by_stage["load"]
    print(f"\nload stage {load_seconds:.1f} s vs plain read_csv of repayments.csv {plain:.1f} s (median of 3): "
          f"{load_seconds / plain:.1f}x (the stage also loads calls and customers and runs the contracts)")
    bare, texts = _bare_encode(warehouse, demo.as_of)
    print(f"embed stage {rows_by_stage['embed'][1]:.1f} s (whole process, cache empty) vs bare encode of the same "
          f"{texts:,} distinct texts {bare:.1f} s: {rows_by_stage['embed'][1] / bare:.2f}x")
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
