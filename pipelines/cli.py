"""The ``postloan`` command: run the nightly job, generate and run the demo, evaluate against known answers."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.config import load_settings
from pipelines.nightly import STAGES, RunPaths, RunSummary, parse_as_of, run_nightly

log = logging.getLogger("postloan")

EPILOG_RUN = """\
landing folder:
  repayments.csv | repayments.parquet   loan_id, customer_id, installment_no, due_date, amount_due,
                                        paid_date, amount_paid (one row per payment; empty paid_* = unpaid)
  calls.jsonl                           one call per line: call_id, customer_id, started_at, direction,
                                        duration_s, turns [{speaker, text}]
  customers.csv (optional)              customer_id, timezone, language

example:
  postloan run --landing /data/landing/2026-06-30 --warehouse /data/postloan.duckdb \\
               --exports /data/exports --as-of 2026-06-30
"""


def _configure_logging(verbosity: int) -> None:
    level = logging.DEBUG if verbosity > 1 else logging.INFO if verbosity >= 0 else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr)
    for noisy in ("great_expectations", "sentence_transformers", "httpx", "urllib3", "numba", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if getattr(args, "encoding", None):
        overrides["landing"] = {"encoding": args.encoding}
    return load_settings(args.config, overrides)


def _as_of(text: str) -> date:
    try:
        return parse_as_of(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _table(frame: pd.DataFrame) -> str:
    return frame.to_string(index=False) if len(frame) else "  (none)"


def _print_summary(summary: RunSummary, paths: RunPaths, seconds: float) -> None:
    print(f"\npostloan-care run for {summary.as_of}  ({seconds:.1f} s)")
    for stage, spent in summary.seconds_by_stage.items():
        print(f"  {stage:<13} {spent:7.1f} s")
    load = summary.reports.get("load")
    if load is not None:
        print("\nLoaded and quarantined rows:")
        print(_table(load.files))
        if len(load.quarantine_by_rule):
            print("\nQuarantined by rule:")
            print(_table(load.quarantine_by_rule))
    embed = summary.reports.get("embed")
    if embed is not None:
        print(f"\nEmbedding: {embed.calls} calls in the window, {embed.utterances} customer utterances, "
              f"{embed.new_embeddings} newly embedded (model {embed.model_id})")
    insight = summary.reports.get("call_insight")
    if insight is not None:
        print(f"Call insight: {insight.calls} calls, {insight.clusters} clusters, {insight.outliers} outliers")
    segments = summary.reports.get("segments")
    if segments is not None:
        print(f"\nCustomers per care segment ({segments.customers} in scope):")
        for segment, count in segments.by_segment.items():
            print(f"  {segment:<18} {count:6d}")
    export = summary.reports.get("export")
    if export is not None:
        print(f"\nExports: {export.folder} ({', '.join(export.files)})")
    print(f"Warehouse: {paths.warehouse}")


def _cmd_run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    paths = RunPaths(landing=args.landing, warehouse=args.warehouse, exports=args.exports)
    started = time.perf_counter()
    if args.stage:
        STAGES[args.stage](paths, args.as_of, settings)
        log.info("stage %s done in %.1f s", args.stage, time.perf_counter() - started)
        return 0
    summary = run_nightly(paths, args.as_of, settings)
    _print_summary(summary, paths, time.perf_counter() - started)
    return 0


def _print_evaluation(truth_csv: Path, warehouse: Path, as_of: date) -> None:
    from pipelines.evaluate import confusion, evaluation
    from pipelines.warehouse import Warehouse

    truth = pd.read_csv(truth_csv, dtype=str, keep_default_na=False)
    with Warehouse(warehouse).session(read_only=True) as session:
        segments = session.frame("select * from care_segments where as_of = $as_of", {"as_of": as_of})
    if segments.empty:
        raise SystemExit(f"no care segments for {as_of} in {warehouse}")
    for group, scores in evaluation(truth, segments).items():
        macro = scores[scores["segment"] == "macro"].iloc[0]
        print(f"\nEvaluation ({group}): macro-F1 {macro['f1']:.3f} over {int(macro['support'])} labelled customers")
        print(scores.round(3).to_string(index=False))
    print("\nConfusion (rows: truth, columns: predicted):")
    print(confusion(truth, segments).to_string())


def _cmd_evaluate(args: argparse.Namespace) -> int:
    _print_evaluation(args.truth, args.warehouse, args.as_of)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from pipelines.demo import write_demo_data

    started = time.perf_counter()
    out = Path(args.out)
    demo = write_demo_data(out, customers=args.customers, seed=args.seed, as_of=args.as_of)
    log.info("demo data for %d customers written to %s (%.1f s)", args.customers, demo.landing_dir,
             time.perf_counter() - started)
    warehouse = out / "warehouse.duckdb"
    paths = RunPaths(landing=demo.landing_dir, warehouse=warehouse, exports=out / "exports")
    summary = run_nightly(paths, demo.as_of, _settings(args))
    _print_summary(summary, paths, time.perf_counter() - started)
    _print_evaluation(demo.truth_csv, warehouse, demo.as_of)
    print(f"\nDemo done in {time.perf_counter() - started:.1f} s. Query it read-only, e.g.: .venv/bin/python -c "
          f"\"import duckdb; print(duckdb.connect('{warehouse}', read_only=True)"
          f".sql('select * from care_segments_latest limit 10'))\"")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``postloan`` command."""
    parser = argparse.ArgumentParser(
        prog="postloan",
        description="postloan-care: nightly care segments (hardship / forgetful / intent_to_default / "
                    "needs_review) for overdue consumer-loan customers, from repayments and collection calls.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and the summary only")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--config", type=Path, default=None,
                         help="YAML file deep-merged over the packaged settings (default: $POSTLOAN_CONFIG)")
        sub.add_argument("--encoding", choices=["auto", "utf-8", "utf-8-sig", "gb18030"], default=None,
                         help="encoding of the landing CSV files (default: auto-detect UTF-8/BOM/GB18030)")

    run = commands.add_parser("run", help="run every stage for one business date",
                              description="Run the nightly job for one as-of date: load + contracts, repayment "
                                          "behaviour, call insight, care segments, exports. Rerunning a date "
                                          "replaces that date's data.",
                              epilog=EPILOG_RUN, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--landing", type=Path, required=True, help="folder with the night's landing files")
    run.add_argument("--warehouse", type=Path, required=True, help="DuckDB file (created if missing)")
    run.add_argument("--exports", type=Path, required=True, help="folder for <as-of>/care_segments.* exports")
    run.add_argument("--as-of", type=_as_of, required=True, help="business date YYYY-MM-DD")
    run.add_argument("--stage", choices=list(STAGES), default=None, help="run only this stage")
    common(run)
    run.set_defaults(handler=_cmd_run)

    demo = commands.add_parser("demo", help="generate the built-in demo data and run the job on it",
                               description="Write deterministic demo landing files plus a separate truth.csv, "
                                           "run the whole job on them and print the summary and evaluation.")
    demo.add_argument("--customers", type=int, default=3000, help="number of customers (default 3000)")
    demo.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    demo.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder (default demo_out)")
    demo.add_argument("--as-of", type=_as_of, default=None, help="business date (default: the demo's)")
    common(demo)
    demo.set_defaults(handler=_cmd_demo)

    evaluate = commands.add_parser("evaluate", help="score the segments against known answers",
                                   description="Print precision/recall/F1 per segment and macro-F1, for "
                                               "customers with calls and without calls.")
    evaluate.add_argument("--truth", type=Path, required=True, help="CSV with customer_id, segment")
    evaluate.add_argument("--warehouse", type=Path, required=True, help="DuckDB file of the run")
    evaluate.add_argument("--as-of", type=_as_of, required=True, help="business date YYYY-MM-DD")
    evaluate.set_defaults(handler=_cmd_evaluate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``postloan`` console script."""
    args = build_parser().parse_args(argv)
    _configure_logging(-1 if args.quiet else args.verbose)
    if args.command == "demo" and args.as_of is None:
        from pipelines.demo import DEFAULT_AS_OF

        args.as_of = DEFAULT_AS_OF
    try:
        return int(args.handler(args))
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        log.error("%s: %s", type(error).__name__, error)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
