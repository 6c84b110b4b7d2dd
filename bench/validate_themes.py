"""Validate call themes: names, outlier share, number of themes, stability on a rerun and with 10% new calls.

Two data sets:

1. Real public text from ../shared/data, if any is complaint-style. The folder holds repayment tables only
   (UCI credit default, Home Credit installments, Kaggle loan payments): no complaint or call text. The one
   real free text there is Home Credit's column descriptions (219 English sentences); the script clusters
   those with the same theme machinery (raw embedding space: the taxonomy-guided space only makes sense for
   collection calls) and prints the themes, as a check that naming and outlier handling behave on text
   nobody on this project wrote. It says so plainly; it is not call data.
2. The demo's calls (synthetic, zh + en), run through the real pipeline: themes in the taxonomy-guided space,
   the figures the issue asks for.

    .venv/bin/python bench/validate_themes.py [--customers 2000] [--seed 7] [--data ../shared/data]

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from insights import themes  # noqa: E402
from insights.embedding import embedder_from_config  # noqa: E402
from insights.intents import InsightSettings, call_evidence, intent_prototypes, load_taxonomy  # noqa: E402
from insights.text import content_hash  # noqa: E402
from pipelines.config import load_settings  # noqa: E402
from pipelines.warehouse import Warehouse  # noqa: E402

DAY = date(2026, 6, 30)
EMPTY = pd.DataFrame(columns=themes.STATE_COLUMNS)


def _settings(config: dict) -> themes.ThemeSettings:
    insight = config["insight"]
    return themes.ThemeSettings.from_config({"min_cluster_size": int(insight["min_cluster_size"]),
                                             "n_components": int(insight["n_components"]),
                                             "seed": int(insight["seed"]), **insight["themes"]})


def _print_themes(night: themes.ThemeNight, texts: list[str], vectors: np.ndarray, settings: themes.ThemeSettings,
                  limit: int = 20) -> None:
    labels = night.assignments["theme_id"].to_numpy()
    terms = themes.class_term_scores(texts, labels.tolist(), settings.top_terms)
    quotes = themes.central_quotes(vectors, labels, night.state, texts, settings.quotes)
    sizes = pd.Series(labels).value_counts()
    for theme_id in sizes.index[:limit]:
        theme_terms = terms[terms["label"] == theme_id]
        name = themes.theme_name(theme_terms, "theme" if theme_id >= 0 else "review queue", "", per_language=5)
        print(f"  [{theme_id:>3}] {sizes[theme_id]:5d} items  {name}")
        for quote in quotes[quotes["theme_id"] == theme_id]["quote"]:
            print(f"          \"{quote}\"")


def _figures(call_ids: list[str], vectors: np.ndarray, settings: themes.ThemeSettings, seed: int) -> dict:
    """Outlier shares, themes, and stability on a rerun and when 10% new calls arrive (refit + ID matching)."""
    first = themes.theme_night(call_ids, vectors, EMPTY, None, DAY, "m", 0, settings)
    rerun = themes.theme_night(call_ids, vectors, EMPTY, None, DAY, "m", 0, settings)
    same = float((first.assignments["theme_id"] == rerun.assignments["theme_id"]).mean())
    rng = np.random.default_rng(seed)
    base = np.sort(rng.choice(len(call_ids), size=int(round(len(call_ids) / 1.1)), replace=False))
    base_night = themes.theme_night([call_ids[i] for i in base], vectors[base], EMPTY, None, DAY, "m", 0, settings)
    later = DAY + timedelta(days=1)
    assigned = themes.theme_night(call_ids, vectors, base_night.state, DAY, later, "m", len(base_night.state),
                                  settings)
    refit_settings = themes.ThemeSettings(**{**settings.__dict__, "refit_every_days": 1})
    refit = themes.theme_night(call_ids, vectors, base_night.state, DAY, later, "m", len(base_night.state),
                               refit_settings)
    before = dict(zip(base_night.assignments["call_id"], base_night.assignments["theme_id"], strict=True))

    def kept(night: themes.ThemeNight) -> float:
        pairs = [(before[c], t) for c, t in zip(night.assignments["call_id"], night.assignments["theme_id"],
                                                strict=True) if c in before]
        return float(np.mean([a == b for a, b in pairs]))

    return {"calls": len(call_ids), "themes": len(first.state),
            "outlier_share_before": float(first.assignments["is_outlier"].mean()),
            "hdbscan_noise_share": first.clusterer_noise_share,
            "outlier_share_after": float(first.assignments["is_review"].mean()),
            "stability_same_data_rerun": same,
            "stability_plus_10pct_assigned": kept(assigned),
            "stability_plus_10pct_refit": kept(refit),
            "refit_themes": len(refit.state), "refit_new_themes": int(refit.state["is_new"].sum()),
            "refit_matched_themes": int(refit.state["matched_from"].notna().sum()),
            "assigned_night_refit_reason": assigned.refit_reason or "none"}


def real_public_text(data: Path, config: dict, settings: themes.ThemeSettings) -> None:
    """Cluster the only real free text in ../shared/data, saying what it is."""
    print(f"\n== Real public text in {data}")
    descriptions = data / "home_credit" / "HomeCredit_columns_description.csv"
    if not descriptions.is_file():
        print("   none found (no ../shared/data in this clone): skipped")
        return
    print("   No complaint or call text exists there (repayment tables only). The one real free text is Home\n"
          "   Credit's column descriptions: clustered below in the raw embedding space as a naming/outlier check.")
    frame = pd.read_csv(descriptions, encoding="latin-1")
    texts = frame["Description"].dropna().astype(str).drop_duplicates().tolist()
    embedder = embedder_from_config(config["embedding"])
    vectors = embedder.encode(texts)
    small = themes.ThemeSettings(**{**settings.__dict__, "min_cluster_size": 5})
    night = themes.theme_night([f"D{i}" for i in range(len(texts))], vectors, EMPTY, None, DAY, "m", 0, small)
    _print_themes(night, texts, themes.unit_rows(vectors), small, limit=12)
    for key, value in _figures([f"D{i}" for i in range(len(texts))], vectors, small, 7).items():
        print(f"   {key:<32} {value:.3f}" if isinstance(value, float) else f"   {key:<32} {value}")


def demo_calls(customers: int, seed: int, config: dict, settings: themes.ThemeSettings) -> None:
    """Run the demo through the job, then measure the themes of its calls."""
    from pipelines.demo import write_demo_data
    from pipelines.nightly import RunPaths, stage_behaviour, stage_embed, stage_load

    print(f"\n== Demo calls ({customers} customers, seed {seed}; synthetic zh + en)")
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        started = time.perf_counter()
        demo = write_demo_data(out, customers=customers, seed=seed)
        paths = RunPaths(landing=demo.landing_dir, warehouse=out / "w.duckdb", exports=out / "exports")
        for stage in (stage_load, stage_behaviour, stage_embed):
            stage(paths, demo.as_of, config)
        taxonomy = load_taxonomy(config["insight"].get("taxonomy"))
        with Warehouse(paths.warehouse).session(read_only=True) as session:
            utterances = session.frame("select * from call_utterances order by call_id, turn_no")
            model_id = str(utterances["model_id"].iloc[0])
            cache = session.frame("select content_hash, vector from embedding_cache where model_id = $m",
                                  {"m": model_id})
        print(f"   pipeline to embeddings: {time.perf_counter() - started:.1f} s")
    vector_of = dict(zip(cache["content_hash"], cache["vector"], strict=True))
    examples = np.vstack([vector_of[content_hash(t, model_id)] for t in taxonomy.examples["text"]])
    prototypes = intent_prototypes(taxonomy, examples)
    evidence = call_evidence(utterances[["call_id", "customer_id", "turn_no", "text"]],
                             np.vstack([vector_of[h] for h in utterances["content_hash"]]), prototypes,
                             InsightSettings())
    guided = themes.guided_vectors(evidence.call_vectors, prototypes, settings.guide_temperature)
    call_ids = list(evidence.call_ids)
    night = themes.theme_night(call_ids, guided, EMPTY, None, DAY, "m", 0, settings)
    call_text = evidence.utterances.groupby("call_id", sort=True)["text"].apply(" ".join).loc[call_ids].tolist()
    _print_themes(night, call_text, guided, settings)
    started = time.perf_counter()
    for space, vectors in (("taxonomy-guided space (the default)", guided),
                           ("raw embedding space (guide_temperature: 0)", evidence.call_vectors)):
        print(f"   -- {space}")
        for key, value in _figures(call_ids, vectors, settings, seed).items():
            print(f"   {key:<32} {value:.3f}" if isinstance(value, float) else f"   {key:<32} {value}")
    print(f"   figures in {time.perf_counter() - started:.1f} s")


def main() -> None:
    """Print the validation figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = parser.parse_args()
    config = load_settings()
    settings = _settings(config)
    real_public_text(args.data, config, settings)
    demo_calls(args.customers, args.seed, config, settings)


if __name__ == "__main__":
    main()
