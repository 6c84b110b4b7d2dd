"""The ``postloan`` command: run the nightly job, generate and run the demo, evaluate against known answers."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
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
        if hasattr(insight, "review"):
            drift = "n/a" if insight.drift is None else f"{insight.drift:.3f}"
            print(f"Themes: {insight.refit_reason or 'assigned to the fit in force'}, drift {drift}, "
                  f"{insight.new_themes} new; outliers {insight.outlier_share_before:.1%} of calls with words, "
                  f"{insight.outlier_share_after:.1%} left for review; {insight.promises} promises to pay"
                  + (f"; LLM read {insight.llm_readings} calls, {insight.llm_disagreements} disagree"
                     if insight.llm_readings else ""))
    segments = summary.reports.get("segments")
    if segments is not None:
        print(f"\nCustomers per care segment ({segments.customers} in scope):")
        for segment, count in segments.by_segment.items():
            print(f"  {segment:<18} {count:6d}")
    _print_actions(summary)
    export = summary.reports.get("export")
    if export is not None:
        written = getattr(export, "rows_by_export", None)
        listed = ", ".join(f"{name} {rows}" for name, rows in written.items()) if written else ", ".join(export.files)
        print(f"\nExports: {export.folder} ({listed})")
    _print_analyst_summary(summary)
    print(f"Warehouse: {paths.warehouse}")


def _cmd_run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    paths = RunPaths(landing=args.landing, warehouse=args.warehouse, exports=args.exports)
    started = time.perf_counter()
    if args.stage:
        from pipelines.run_log import recorded_stage

        # like an Airflow task: the run log records the attempt, and the stage gets the warehouse settings
        # (DuckDB's memory cap) the way run_nightly gives them
        run_id = f"cli-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S.%fZ')}"
        with recorded_stage(paths.warehouse, run_id, args.as_of, args.stage, settings) as outcome:
            outcome["report"] = STAGES[args.stage](paths, args.as_of, settings)
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
    if "sub_reason" in truth.columns:
        from pipelines.evaluate import sub_reason_accuracy

        accuracy = sub_reason_accuracy(truth, segments)
        overall = accuracy[accuracy["sub_reason"] == "all"].iloc[0]
        print(f"\nSub-reason accuracy (customers with calls): {overall['accuracy']:.3f} over "
              f"{int(overall['customers'])} customers")
        print(accuracy.round(3).to_string(index=False))


def _cmd_evaluate(args: argparse.Namespace) -> int:
    _print_evaluation(args.truth, args.warehouse, args.as_of)
    return 0


def _print_actions(summary: RunSummary) -> None:
    actions = summary.reports.get("actions")
    if actions is None:
        return
    print(f"\nCare actions (policy {actions.policy_version}, contact rules {actions.contact_rules_version}): "
          "customers per segment and group, and how many are on each channel's list")
    print(_table(actions.by_segment))
    for cap in actions.cap.itertuples(index=False):
        print(f"Cost cap {cap.cap}: {cap.offered} offered for {cap.spent:.2f} of {cap.limit:g}; "
              f"{cap.excluded} excluded by the cap (listed in cap_excluded)")
    print("\nContact-rule outcomes (rule set, route, why the next call is not earlier):")
    print(_table(actions.by_route))
    if actions.attempts_loaded or actions.attempts_quarantined:
        print(f"Unanswered attempts: {actions.attempts_loaded} loaded, {actions.attempts_quarantined} quarantined")
    if actions.rules_matching_nobody:
        print(f"Policy rules that matched nobody tonight: {', '.join(actions.rules_matching_nobody)}")
    for problem in actions.policy_problems:
        print(f"Policy check: {problem}")


def _print_outcomes(warehouse: Path, first: date, last: date) -> None:
    from pipelines.warehouse import Warehouse

    with Warehouse(warehouse).session(read_only=True) as session:
        outcomes = session.frame(
            "select segment, experiment_group, count(*) as customers, count(*) filter (where was_overdue) as "
            "overdue, round(count(*) filter (where is_cured) / nullif(count(*) filter (where was_overdue), 0), 3) "
            "as cure_rate, round(count(*) filter (where is_rolled) / nullif(count(*) filter (where was_overdue), "
            "0), 3) as roll_rate, round(sum(promises_kept) / nullif(sum(promises_due), 0), 3) as "
            "promise_kept_rate, round(sum(amount_recovered), 2) as amount_recovered from action_outcomes "
            "where as_of = $first and followed_on = $last group by all order by segment, experiment_group",
            {"first": first, "last": last})
        changes = session.frame(
            "select coalesce(from_segment, '(new)') as from_segment, to_segment, count(*) as customers "
            "from segment_change_log where changed_on > $first group by all order by customers desc limit 12",
            {"first": first})
    print(f"\nOutcomes of {first}'s actions by {last} (treatment vs control; views treatment_outcomes, "
          "treatment_vs_control, action_outcomes):")
    print(_table(outcomes))
    print(f"\nSegment changes after {first} (view segment_change_log):")
    print(_table(changes))


def _cmd_demo(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from pipelines.demo import write_demo_data, write_demo_night

    if args.nights < 1:
        raise ValueError("--nights must be at least 1")
    started = time.perf_counter()
    out = Path(args.out)
    warehouse = out / "warehouse.duckdb"
    settings = _settings(args)
    first = write_demo_data(out, customers=args.customers, seed=args.seed, as_of=args.as_of)
    for night in range(1, args.nights + 1):
        demo = first if night == 1 else write_demo_night(out, args.customers, args.seed, first.as_of, night)
        (demo.landing_dir / "_READY").touch()  # the landing folder is complete (what the Airflow DAG waits for)
        log.info("demo night %d: data for %d customers written to %s", night, args.customers, demo.landing_dir)
        paths = RunPaths(landing=demo.landing_dir, warehouse=warehouse, exports=out / "exports")
        night_started = time.perf_counter()
        summary = run_nightly(paths, demo.as_of, settings)
        _print_summary(summary, paths, time.perf_counter() - night_started)
    if args.nights > 1:
        _print_outcomes(warehouse, first.as_of, first.as_of + timedelta(days=args.nights - 1))
    _print_evaluation(first.truth_csv, warehouse, first.as_of)
    print(f"\nDemo ({args.nights} night(s)) done in {time.perf_counter() - started:.1f} s. Query it read-only, "
          f"e.g.: .venv/bin/python -c \"import duckdb; print(duckdb.connect('{warehouse}', read_only=True)"
          f".sql('select * from treatment_vs_control'))\"")
    return 0


def _print_analyst_summary(summary: RunSummary) -> None:
    published = summary.reports.get("publish")
    if published is not None:
        print(f"Published for analysts: {published.current} (read-only snapshot {published.snapshot.name}; "
              f"views analyst.{', analyst.'.join(published.views)})")
    report = summary.reports.get("report")
    if report is not None:
        print(f"Report: {report.path}")


def _analyst_warehouse(args: argparse.Namespace) -> Path:
    """Return the file ``sql``/``report`` read: --warehouse, else the published current.duckdb."""
    from pipelines.publish import published_current

    return Path(args.warehouse) if args.warehouse else published_current(load_settings(args.config))


def _cmd_sql(args: argparse.Namespace) -> int:
    from pipelines.warehouse import read_only_query

    frame = read_only_query(_analyst_warehouse(args), args.query)
    if args.csv:
        Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(args.csv, index=False, encoding="utf-8", lineterminator="\n")
        print(f"{len(frame)} rows written to {args.csv}")
        return 0
    with pd.option_context("display.width", 250, "display.max_columns", None, "display.max_colwidth", 60):
        print(_table(frame.head(args.max_rows)))
    if len(frame) > args.max_rows:
        print(f"... {len(frame) - args.max_rows} more rows (use --max-rows or --csv FILE)")
    print(f"({len(frame)} rows)")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from pipelines.report import write_report

    result = write_report(_analyst_warehouse(args), args.as_of, args.out, load_settings(args.config))
    print(f"Report for {args.as_of}: {result.path}")
    return 0


def _add_analyst_commands(commands: Any) -> None:
    """Add ``sql`` and ``report``: both read the published read-only snapshot, never the nightly warehouse."""
    where = ("DuckDB file to read (default: the published snapshot, published/current.duckdb next to "
             "$POSTLOAN_WAREHOUSE, or publish.dir of the settings)")
    sql = commands.add_parser(
        "sql", help="query the published warehouse (read-only)",
        description="Run one query against the published read-only warehouse and print a table (or write CSV). "
                    "The analyst views live in the schema 'analyst': segment_mix_by_night, customer_timeline, "
                    "theme_overview, behaviour_by_segment, outcomes_by_segment.",
        epilog="example:\n  postloan sql \"select * from analyst.segment_mix_by_night order by as_of desc\" "
               "--warehouse demo_out/published/current.duckdb",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sql.add_argument("query", help="one SQL query (DuckDB dialect)")
    sql.add_argument("--warehouse", type=Path, default=None, help=where)
    sql.add_argument("--csv", type=Path, default=None, help="write the result to this CSV file instead")
    sql.add_argument("--max-rows", type=int, default=100, help="rows printed (default 100)")
    sql.add_argument("--config", type=Path, default=None, help="settings YAML (for publish.dir)")
    sql.set_defaults(handler=_cmd_sql)

    report = commands.add_parser(
        "report", help="write the nightly HTML insight report",
        description="Write a self-contained HTML page (charts inline) for one night: segment counts and change, "
                    "calls by theme, top terms and quotes, days late per segment, actions, contact-rule "
                    "outcomes, data quality.")
    report.add_argument("--as-of", type=_as_of, required=True, help="business date YYYY-MM-DD")
    report.add_argument("--warehouse", type=Path, default=None, help=where)
    report.add_argument("--out", type=Path, default=Path("reports"),
                        help="folder for <as-of>/index.html (default reports/)")
    report.add_argument("--config", type=Path, default=None, help="settings YAML (report fonts, tables)")
    report.set_defaults(handler=_cmd_report)


def _cmd_policy_check(args: argparse.Namespace) -> int:
    from insights.actions import load_action_policy, taxonomy_sub_reasons
    from insights.intents import load_taxonomy

    settings = _settings(args)
    path = args.policy or settings["segment"].get("policy")
    taxonomy = settings["insight"].get("taxonomy")
    policy = load_action_policy(path, taxonomy_sub_reasons(load_taxonomy(taxonomy)
                                                           .sub_reasons))
    print(f"policy {policy.version}: {len(policy.rules)} rules, tried in this order:")
    for rule in policy.rules:
        reasons = ",".join(sorted(rule.sub_reasons)) if rule.sub_reasons else "any"
        high = "" if rule.max_days_past_due >= 10**9 else str(rule.max_days_past_due)
        print(f"  {rule.rule_id:<40} {rule.segment:<18} sub-reasons {reasons:<30} "
              f"dpd {rule.min_days_past_due}-{high:<4} -> {';'.join(rule.treatments)}")
    print("\n".join(f"  {p}" for p in policy.problems) if policy.problems else "no problems found")
    return 0


def _add_policy_command(commands: Any) -> None:
    check = commands.add_parser("policy-check", help="check an action policy file and list its rules",
                                description="Load the action policy like the nightly job does: errors (unknown or "
                                            "mutually exclusive treatments, missing defaults) exit with status 2; "
                                            "rules that can match nobody or partly overlap are listed.")
    check.add_argument("--policy", type=Path, default=None, help="policy YAML (default: segment.policy setting)")
    check.add_argument("--config", type=Path, default=None, help="settings YAML deep-merged over the defaults")
    check.set_defaults(handler=_cmd_policy_check)


def _cmd_delta(args: argparse.Namespace) -> int:
    from pipelines.delta import write_delta_landing

    for file in write_delta_landing(args.previous, args.current, args.out):
        print(f"{file.name:<22} {file.new_lines:>12,} new of {file.current_lines:>12,} lines")
    print(f"delta landing written to {args.out} (marked _DELTA: `postloan run --landing {args.out}` loads it as a "
          "delta night)")
    return 0


def _add_delta_command(commands: Any) -> None:
    delta = commands.add_parser(
        "delta", help="turn two consecutive full extracts into the later night's delta landing folder",
        description="Write the lines of each landing file of --current that --previous does not have, plus a "
                    "_DELTA marker: the night's delta. `postloan run` then loads only those rows and later stages "
                    "read the latest snapshot plus every delta since (landing.kind in the settings). Repayment "
                    "rows must be append-only events; a row corrected in place shows up as a new row.")
    delta.add_argument("--previous", type=Path, required=True, help="the previous night's full landing folder")
    delta.add_argument("--current", type=Path, required=True, help="tonight's full landing folder")
    delta.add_argument("--out", type=Path, required=True, help="folder to write tonight's delta landing into")
    delta.set_defaults(handler=_cmd_delta)


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
    demo.add_argument("--nights", type=int, default=3,
                      help="consecutive nights to generate and run, from --as-of on (default 3)")
    common(demo)
    demo.set_defaults(handler=_cmd_demo)

    evaluate = commands.add_parser("evaluate", help="score the segments against known answers",
                                   description="Print precision/recall/F1 per segment and macro-F1, for "
                                               "customers with calls and without calls.")
    evaluate.add_argument("--truth", type=Path, required=True, help="CSV with customer_id, segment")
    evaluate.add_argument("--warehouse", type=Path, required=True, help="DuckDB file of the run")
    evaluate.add_argument("--as-of", type=_as_of, required=True, help="business date YYYY-MM-DD")
    evaluate.set_defaults(handler=_cmd_evaluate)
    _add_analyst_commands(commands)
    _add_policy_command(commands)
    _add_delta_command(commands)
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
