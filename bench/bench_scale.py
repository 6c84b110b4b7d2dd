"""Time every stage of a full nightly run at a chosen scale, each stage in its own process (as Airflow runs it).

Usage: python bench/bench_scale.py --scale S|M|L [--customers N] [--calls N] [--workdir DIR] [--no-incremental]
       [--no-sql-load] [--no-topics] [--one-process] [--profile DIR]

Data: the demo generator (``pipelines.demo.write_demo_data``) writes a base night of up to 200k customers (its
memory grows with the customer count: about 2.5 GB at 200k); larger scales replicate that base with renamed
loan and customer ids (``R<k>`` suffix), streamed through DuckDB, so L never holds 1M customers in Python.
Calls per night are picked evenly from the base night's calls (issue 7: M 20k, L 100k, i.e. customers / 10).
Night 2 is night 1's files with 1% new repayment rows and 10% new calls appended (an append-only extract).

Prints a table per night (stage, rows, seconds, rows/s, peak RSS of the stage's process) and side-by-side ratios
measured in the same run: the load stage vs plain DuckDB read_csv of the same repayments file (and the load
stage with the SQL-translated contract engine); the embed stage vs the bare model's encode on the same texts;
our clustering + naming vs BERTopic on the same vectors (bench/bench_topics.py, when BERTopic is installed);
night 2 run twice from copies of night 1's warehouse: full (the whole extract) and incremental (only the new
lines, as a ``_DELTA`` landing written by ``postloan delta``). ``--profile DIR`` writes a pyinstrument report of
every stage process. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb

SCALES = {"S": 10_000, "M": 200_000, "L": 1_000_000}
BASE_CUSTOMERS_MAX = 200_000
POSTLOAN = str(Path(sys.executable).with_name("postloan"))
ID_COLUMNS = {"repayments.csv": ("loan_id", "customer_id"), "customers.csv": ("customer_id",),
              "contact_attempts.csv": ("customer_id",)}

# the table whose as-of partition counts a stage's output rows
STAGE_ROWS = {
    "load": "select sum(rows_read) from load_reconciliation where as_of = $as_of",
    "behaviour": "select count(*) from customer_behaviour where as_of = $as_of",
    "embed": "select count(*) from call_utterances where as_of = $as_of",
    "call_insight": "select count(*) from call_insights where as_of = $as_of",
    "segments": "select count(*) from care_segments where as_of = $as_of",
    "actions": "select count(*) from care_actions where as_of = $as_of",
    "export": "select count(*) from care_segments where as_of = $as_of",
}


# --- data at scale -----------------------------------------------------------------------------------------------


def _replicated_csv(source: Path, target: Path, id_columns: tuple[str, ...], replicas: int) -> None:
    """Write ``source`` followed by ``replicas - 1`` copies with ``R<k>`` appended to non-empty ids (DuckDB COPY)."""
    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    header = con.execute(f"select * from read_csv('{source}', all_varchar = true, header = true) limit 0").description
    columns = [column[0] for column in header]

    def renamed(k: int) -> str:
        return ", ".join(
            f"case when trim(coalesce({c}, '')) = '' then {c} else {c} || 'R{k}' end as {c}" if c in id_columns and k
            else c for c in columns)

    parts = " union all ".join(
        f"(select {renamed(k)} from read_csv('{source}', all_varchar = true, header = true, strict_mode = false))"
        for k in range(replicas))
    con.execute(f"copy ({parts}) to '{target}' (header, delimiter ',')")
    con.close()


def _calls_lines(base: Path, count: int, replicas: int, skip: set[int] | None = None) -> list[tuple[int, bytes]]:
    """Return ``count`` (line number, line) picked evenly from the base calls, customer ids spread over replicas."""
    lines = [(number, line) for number, line in enumerate(base.read_bytes().splitlines(keepends=True))
             if line.strip() and (skip is None or number not in skip)]
    step = max(1, len(lines) / max(count, 1))
    picked = [lines[int(i * step)] for i in range(min(count, len(lines)))]
    if replicas == 1:
        return picked
    spread = []
    for i, (number, line) in enumerate(picked):
        k = i % replicas
        try:
            record = json.loads(line)
        except ValueError:
            spread.append((number, line))
            continue
        if k and isinstance(record, dict) and isinstance(record.get("customer_id"), str) and record["customer_id"]:
            record["customer_id"] += f"R{k}"
            line = (json.dumps(record, ensure_ascii=False) + "\n").encode()
        spread.append((number, line))
    return spread


def _new_call(line: bytes, as_of: date) -> bytes:
    """Return a base call line as a call of night ``as_of``: a new id and a start time that day."""
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict):
        return line
    record["call_id"] = f"{record.get('call_id')}-N{as_of:%m%d}"
    record["started_at"] = f"{as_of.isoformat()}T10:30:00+08:00"
    return (json.dumps(record, ensure_ascii=False) + "\n").encode()


def write_scaled_nights(workdir: Path, customers: int, calls: int,
                        base_customers_max: int = BASE_CUSTOMERS_MAX) -> tuple[Path, Path, date, date, float]:
    """Write night 1 and an incremental night 2 landing folder; return (landing1, landing2, as_of1, as_of2, seconds)."""
    from pipelines.demo import write_demo_data

    started = time.perf_counter()
    base_customers = min(customers, base_customers_max)
    replicas = math.ceil(customers / base_customers)
    base = write_demo_data(workdir / "base", customers=base_customers)
    as_of1, as_of2 = base.as_of, base.as_of + timedelta(days=1)
    night1, night2 = workdir / "night1", workdir / "night2"
    for folder in (night1, night2):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    for name, id_columns in ID_COLUMNS.items():
        source = base.landing_dir / name
        if replicas == 1:
            shutil.copyfile(source, night1 / name)
        else:
            _replicated_csv(source, night1 / name, id_columns, replicas)
    base_calls = base.landing_dir / "calls.jsonl"
    picked = _calls_lines(base_calls, calls, replicas)
    (night1 / "calls.jsonl").write_bytes(b"".join(line for _, line in picked))
    # night 2: the same extract plus 1% new payment rows and 10% new calls (calls night 1 did not have), appended
    # to night 1's bytes (an append-only extract); its delta folder holds just those new lines
    shutil.copyfile(night1 / "customers.csv", night2 / "customers.csv")
    shutil.copyfile(night1 / "contact_attempts.csv", night2 / "contact_attempts.csv")
    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    source = f"read_csv('{night1 / 'repayments.csv'}', all_varchar = true, header = true, strict_mode = false)"
    new_payments = workdir / "new_payments.csv"
    con.execute(
        f"copy (select loan_id, customer_id, installment_no, due_date, amount_due, '{as_of2.isoformat()}', '1.00' "
        f"from (select row_number() over () as n, * from {source}) where n % 100 = 7 and trim(coalesce(loan_id, '')) "
        f"<> '') to '{new_payments}' (header false, delimiter ',')")
    con.close()
    with (night2 / "repayments.csv").open("wb") as out:
        for part in (night1 / "repayments.csv", new_payments):
            with part.open("rb") as handle:
                shutil.copyfileobj(handle, out, 1 << 24)
    new_payments.unlink()
    new_calls = _calls_lines(base_calls, max(1, calls // 10), replicas, skip={number for number, _ in picked})
    (night2 / "calls.jsonl").write_bytes(
        (night1 / "calls.jsonl").read_bytes() + b"".join(_new_call(line, as_of2) for _, line in new_calls))
    seconds = time.perf_counter() - started
    (workdir / "nights.json").write_text(json.dumps({
        "night1": str(night1), "night2": str(night2), "as_of1": as_of1.isoformat(), "as_of2": as_of2.isoformat(),
        "base": str(workdir / "base"),
        "seconds": seconds}), encoding="utf-8")
    return night1, night2, as_of1, as_of2, seconds


# --- timing ------------------------------------------------------------------------------------------------------


def _timed_stage(command: list[str]) -> tuple[float, float]:
    """Run one stage process under /usr/bin/time; return (seconds, its peak RSS in MB).

    Peak RSS comes from /usr/bin/time, not from this process's wait4: on Linux a child's ru_maxrss starts from
    the RSS of the process that forked it.
    """
    timer = ["/usr/bin/time", "-f", "maxrss_kb=%M"] if Path("/usr/bin/time").is_file() else []
    started = time.perf_counter()
    process = subprocess.run(timer + command, capture_output=True, check=False)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{process.stderr.decode()[-3000:]}")
    lines = [line for line in process.stderr.decode().splitlines() if line.startswith("maxrss_kb=")]
    return seconds, int(lines[-1].split("=")[1]) / 1024 if lines else 0.0


def _rows(warehouse: Path, stage: str, as_of: date) -> int:
    query = STAGE_ROWS.get(stage)
    if query is None:
        return 0
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return int(con.execute(query.replace("$as_of", "?"), [as_of]).fetchall()[0][0] or 0)
    except duckdb.Error:
        return 0
    finally:
        con.close()


def _stage_command(landing: Path, warehouse: Path, exports: Path, as_of: date, stage: str | None,
                   config: Path | None, profile: Path | None) -> list[str]:
    command = [POSTLOAN, "-q", "run", "--landing", str(landing), "--warehouse", str(warehouse),
               "--exports", str(exports), "--as-of", as_of.isoformat()]
    command += ["--stage", stage] if stage else []
    command += ["--config", str(config)] if config is not None else []
    if profile is not None:  # pyinstrument's text report of the process, one file per stage
        profile.mkdir(parents=True, exist_ok=True)
        report = profile / f"{as_of.isoformat()}-{stage or 'all'}.txt"
        command = [sys.executable, "-m", "pyinstrument", "-r", "text", "--show-all", "-o", str(report)] + command
    return command


def run_night(landing: Path, warehouse: Path, exports: Path, as_of: date, config: Path | None = None,
              one_process: bool = False, profile: Path | None = None) -> dict[str, tuple[int, float, float]]:
    """Run every stage in its own process (or all in one); return stage -> (rows, seconds, peak RSS MB)."""
    from pipelines.nightly import STAGES

    if one_process:
        seconds, rss = _timed_stage(_stage_command(landing, warehouse, exports, as_of, None, config, profile))
        return {"all stages": (_rows(warehouse, "segments", as_of), seconds, rss)}
    by_stage = {}
    for stage in STAGES:
        seconds, rss = _timed_stage(_stage_command(landing, warehouse, exports, as_of, stage, config, profile))
        by_stage[stage] = (_rows(warehouse, stage, as_of), seconds, rss)
    return by_stage


def _copy_warehouse(source: Path, target: Path) -> None:
    for leftover in (target, target.with_name(target.name + ".wal")):
        leftover.unlink(missing_ok=True)
    shutil.copyfile(source, target)


def print_table(title: str, by_stage: dict[str, tuple[int, float, float]]) -> float:
    total = sum(seconds for _, seconds, _ in by_stage.values())
    print(f"\n{title}\n{'stage':<14}{'rows':>12}{'seconds':>10}{'rows/s':>12}{'peak RSS MB':>13}")
    for stage, (rows, seconds, rss) in by_stage.items():
        print(f"{stage:<14}{rows:>12,}{seconds:>10.1f}{rows / seconds if seconds else 0:>12,.0f}{rss:>13,.0f}")
    print(f"{'total':<14}{'':>12}{total:>10.1f}{'':>12}{max(r for _, _, r in by_stage.values()):>13,.0f}")
    return total


def _plain_read_csv(csv: Path, workdir: Path) -> float:
    code = ("import duckdb,sys; con=duckdb.connect(sys.argv[2]); "
            "con.execute(f\"create table t as select * from read_csv('{sys.argv[1]}')\"); con.close()")
    target = workdir / "plain.duckdb"
    target.unlink(missing_ok=True)
    seconds, _ = _timed_stage([sys.executable, "-c", code, str(csv), str(target)])
    target.unlink(missing_ok=True)
    return seconds


def _bare_encode(warehouse: Path, as_of: date) -> tuple[float, float, int]:
    """Time the bare model on the distinct texts the embed stage encoded: (whole process, encode only, texts)."""
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
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, str(warehouse), as_of.isoformat()], capture_output=True,
                         text=True, check=True).stdout.split()
    return time.perf_counter() - started, float(out[0]), int(out[1])


def _machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    return f"{platform.node()}, {os.cpu_count()} cores, {memory:.0f} GB RAM, load average {load}"


def _topics(warehouse: Path, as_of: date, truth: Path | None, workdir: Path) -> None:
    """Print our clustering + naming vs BERTopic on the night's vectors (bench/bench_topics.py, its own process).

    A child process keeps numba and BERTopic out of this one; without BERTopic it times ours alone.
    """
    command = [sys.executable, str(Path(__file__).with_name("bench_topics.py")), "--warehouse", str(warehouse),
               "--as-of", as_of.isoformat(), "--json", str(workdir / "topics.json")]
    command += ["--truth", str(truth)] if truth is not None else []
    process = subprocess.run(command, capture_output=True, text=True, check=False)
    print("\nclustering + naming vs BERTopic (bench/bench_topics.py; install BERTopic with "
          "`.venv/bin/pip install -c requirements.lock -e .[bench]`):")
    print(process.stdout.rstrip() if process.returncode == 0 else f"failed: {process.stderr[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=list(SCALES), default="S")
    parser.add_argument("--customers", type=int, default=None, help="override the scale's customer count")
    parser.add_argument("--calls", type=int, default=None, help="calls in the night's file (default customers/10)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep data here (default: a temp dir)")
    parser.add_argument("--base-customers", type=int, default=BASE_CUSTOMERS_MAX,
                        help="customers the demo generator writes; more are replicas of them with renamed ids")
    parser.add_argument("--no-incremental", action="store_true", help="skip the second night (full and delta)")
    parser.add_argument("--no-sql-load", action="store_true",
                        help="skip the extra load with the SQL-translated contract engine (contract_engine: duckdb)")
    parser.add_argument("--no-topics", action="store_true", help="skip clustering + naming vs BERTopic")
    parser.add_argument("--one-process", action="store_true",
                        help="run each night as one `postloan run` process instead of one process per stage")
    parser.add_argument("--profile", type=Path, default=None,
                        help="write a pyinstrument text profile of every stage process into this folder")
    args = parser.parse_args()
    customers = args.customers or SCALES[args.scale]
    calls = args.calls or max(1, customers // 10)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="postloan-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}; {_machine()}")
    # generated in a child process: the generator's memory never inflates this process or the stages it starts
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; from bench_scale import "
            "write_scaled_nights; write_scaled_nights(Path(sys.argv[2]), *map(int, sys.argv[3:6]))")
    _, generator_rss = _timed_stage([sys.executable, "-c", code, str(Path(__file__).parent), str(workdir),
                                     str(customers), str(calls), str(args.base_customers)])
    written = json.loads((workdir / "nights.json").read_text(encoding="utf-8"))
    night1, night2 = Path(written["night1"]), Path(written["night2"])
    as_of1, as_of2 = date.fromisoformat(written["as_of1"]), date.fromisoformat(written["as_of2"])
    generated = float(written["seconds"])
    csv = night1 / "repayments.csv"
    repayment_rows = sum(1 for _ in csv.open("rb")) - 1
    print(f"scale {args.scale}: {customers:,} customers, {repayment_rows:,} repayment rows "
          f"({csv.stat().st_size / 1e6:.0f} MB), {calls:,} calls; data written in {generated:.0f} s, generator peak "
          f"RSS {generator_rss:,.0f} MB")
    warehouse, exports = workdir / "warehouse.duckdb", workdir / "exports"
    for leftover in (warehouse, warehouse.with_name(warehouse.name + ".wal")):
        leftover.unlink(missing_ok=True)
    shutil.rmtree(exports, ignore_errors=True)
    first = run_night(night1, warehouse, exports, as_of1, one_process=args.one_process, profile=args.profile)
    total = print_table(f"night 1 ({as_of1}, full run on an empty warehouse); load average "
                        f"{os.getloadavg()[0]:.2f}", first)

    if not args.one_process:
        plain = [_plain_read_csv(csv, workdir) for _ in range(3)]
        load_seconds = first["load"][1]
        print(f"\nload stage {load_seconds:.1f} s vs plain DuckDB read_csv of repayments.csv into a table "
              f"{statistics.median(plain):.1f} s (median of 3, each a fresh process): "
              f"{load_seconds / statistics.median(plain):.1f}x (the stage also reads, checks and redacts the calls "
              "and customers, writes quarantine and runs the contracts)")
        if not args.no_sql_load:
            config = workdir / "sql_contracts.yaml"
            config.write_text("landing:\n  contract_engine: duckdb\n", encoding="utf-8")
            other = workdir / "warehouse-sql.duckdb"
            other.unlink(missing_ok=True)
            sql_seconds, sql_rss = _timed_stage(_stage_command(night1, other, workdir / "exports-sql", as_of1, "load",
                                                               config, None))
            plain.append(_plain_read_csv(csv, workdir))
            other.unlink(missing_ok=True)
            print(f"load stage with landing.contract_engine: duckdb (the suites translated to SQL) {sql_seconds:.1f} "
                  f"s, peak RSS {sql_rss:,.0f} MB: {sql_seconds / statistics.median(plain):.1f}x read_csv (median of "
                  f"{len(plain)}); the default (Great Expectations) load takes {load_seconds / sql_seconds:.1f}x as "
                  "long")
        bare_process, bare_encode, texts = _bare_encode(warehouse, as_of1)
        embed_seconds = first["embed"][1]
        print(f"embed stage {embed_seconds:.1f} s (its whole process, cache empty) vs the bare model on the same "
              f"{texts:,} distinct texts: {bare_process:.1f} s as a whole process (import, model load, read texts, "
              f"encode) -> {embed_seconds / bare_process:.2f}x; encode() alone {bare_encode:.1f} s -> "
              f"{embed_seconds / bare_encode:.2f}x")
    if not args.no_topics:
        truth = Path(written["base"]) / "truth.csv" if "base" in written else None
        _topics(warehouse, as_of1, truth if truth is not None and truth.is_file() and customers <= args.base_customers
                else None, workdir)
    if not args.no_incremental:
        night1_warehouse = workdir / "night1.duckdb"
        _copy_warehouse(warehouse, night1_warehouse)
        started = time.perf_counter()
        from pipelines.delta import write_delta_landing

        delta = workdir / "delta2"
        shutil.rmtree(delta, ignore_errors=True)
        new_lines = {file.name: file.new_lines for file in write_delta_landing(night1, night2, delta)}
        print(f"\ndelta of night 2 over night 1 written in {time.perf_counter() - started:.1f} s (`postloan delta`; "
              f"the lender's extract job, not part of the night): {new_lines}")
        full2 = run_night(night2, warehouse, exports, as_of2, one_process=args.one_process, profile=args.profile)
        full_total = print_table(f"night 2 ({as_of2}), full: the whole append-only extract (1% new repayment rows, "
                                 f"10% new calls) on night 1's warehouse; load average {os.getloadavg()[0]:.2f}", full2)
        _copy_warehouse(night1_warehouse, warehouse)
        shutil.rmtree(exports / as_of2.isoformat(), ignore_errors=True)
        incremental = run_night(delta, warehouse, exports, as_of2, one_process=args.one_process,
                                profile=args.profile / "delta" if args.profile else None)
        delta_total = print_table(f"night 2 ({as_of2}), incremental: only the new lines (_DELTA landing) on night 1's "
                                  f"warehouse; load average {os.getloadavg()[0]:.2f}", incremental)
        print(f"\nincremental night 2 {delta_total:.1f} s vs full night 2 {full_total:.1f} s: "
              f"{delta_total / full_total:.0%} (vs full night 1 {total:.1f} s: {delta_total / total:.0%})")
    print(f"\nend: {time.strftime('%H:%M:%S')}; load average {os.getloadavg()[0]:.2f}")
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
