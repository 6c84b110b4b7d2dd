"""The embedding stage in three steps, so Airflow can spread the encoding over workers (dynamic task mapping).

1. ``plan_embedding`` (writes DuckDB): the customers' turns in the call window -> ``call_utterances`` and
   ``calls_in_window``; the texts not yet in ``embedding_cache`` -> ``pending.parquet`` in the work folder.
2. ``embed_shard`` (one per shard, no DuckDB, safe to run in parallel on any worker that sees the work folder):
   encodes its slice of the pending texts and writes ``shard-NNNNN.parquet`` (content_hash, model_id, vector).
3. ``merge_embedding`` (writes DuckDB): loads every shard file into ``embedding_cache`` and removes the folder.

**Identical to the unsharded run.** The USE ONNX model quantises activations per batch, so a vector depends
slightly on the texts batched with it. Shards are therefore cut on encode-batch boundaries (the shard size is
rounded up to a whole number of the embedder's encode chunks) from the same ordered list of new texts one
unsharded ``encode`` call would get: every batch has the same members, and the vectors are bit-identical.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.nightly import EmbedReport, RunPaths
from pipelines.warehouse import Session, Warehouse

log = logging.getLogger(__name__)

PLAN_FILE = "plan.json"
PENDING_FILE = "pending.parquet"


@dataclass(frozen=True)
class EmbedPlan:
    """What the embedding of one as-of date has to do, written as ``plan.json`` in the work folder."""

    as_of: str
    model_id: str
    calls: int
    utterances: int
    pending: int
    shard_size: int
    shards: int


@dataclass(frozen=True)
class ShardReport:
    """What one shard task encoded (also written next to its Parquet file for the run log)."""

    shard: int
    texts: int
    vectors: int
    model_id: str
    path: str
    worker: str
    started_at: str
    ended_at: str


def work_dir(paths: RunPaths, as_of: date, settings: Any) -> Path:
    """Return the folder of a date's shard files: ``embed_sharding.work_dir`` or next to the warehouse.

    With workers on several machines it must be shared storage, like the warehouse and the exports.
    """
    configured = (settings.get("embed_sharding") or {}).get("work_dir")
    base = Path(configured) if configured else paths.warehouse.parent / f"{paths.warehouse.stem}.embed_shards"
    return base / as_of.isoformat()


def encode_chunk(embedder: Any) -> int:
    """Return how many texts the embedder encodes per call of its model (its unit of batching)."""
    from insights.embedding import SentenceTransformerEmbedder

    batch = int(getattr(embedder, "batch_size", 1))
    # sentence-transformers gets chunks of 10 batches and sorts by length inside a chunk
    return batch * 10 if isinstance(embedder, SentenceTransformerEmbedder) else batch


def aligned_shard_size(configured: int, chunk: int) -> int:
    """Return the shard size rounded up to a whole number of encode chunks (at least one)."""
    if configured < 1 or chunk < 1:
        raise ValueError(f"shard size and encode chunk must be positive, got {configured} and {chunk}")
    return -(-configured // chunk) * chunk


def shard_count(pending: int, shard_size: int) -> int:
    """Return the number of shards for ``pending`` texts."""
    return -(-pending // shard_size)


def _read_plan(folder: Path) -> EmbedPlan:
    path = folder / PLAN_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no embedding plan at {path}: run the embed_plan task for this date first")
    return EmbedPlan(**json.loads(path.read_text(encoding="utf-8")))


def _write_atomically(frame: pd.DataFrame, path: Path) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    frame.to_parquet(temporary, index=False)
    temporary.replace(path)


def plan_embedding(paths: RunPaths, as_of: date, settings: Any, embedder: Any | None = None) -> EmbedPlan:
    """Write the date's utterances and window calls, and the ordered list of texts still to embed."""
    from insights.embedding import embedder_from_config
    from insights.intents import load_taxonomy
    from insights.text import content_hash, customer_utterances

    embedder = embedder or embedder_from_config(settings["embedding"])
    example_texts = list(load_taxonomy(settings["insight"].get("taxonomy")).examples["text"])
    with Warehouse(paths.warehouse).session() as session:
        turns = session.model_frame("insight/customer_turns_in_window", {
            "as_of": as_of, "lookback_days": int(settings["windows"]["call_lookback_days"])})
        utterances = customer_utterances(turns, min_chars=int(settings["insight"]["min_utterance_chars"]))
        texts = example_texts + list(utterances["text"])
        hashes = [content_hash(t, embedder.model_id) for t in texts]
        cached = cached_vectors(session, sorted(set(hashes)), embedder.model_id)
        # the same first-seen order embeddings_with_cache gives one unsharded encode call
        pending = dict(zip(hashes, texts, strict=True))
        pending = {key: text for key, text in pending.items() if key not in cached}
        window_calls = turns.drop_duplicates("call_id")[["call_id", "customer_id", "started_at"]]
        session.replace_partition("call_utterances", as_of, utterances.assign(
            content_hash=[content_hash(t, embedder.model_id) for t in utterances["text"]],
            model_id=embedder.model_id))
        session.replace_partition("calls_in_window", as_of, window_calls)
    size = aligned_shard_size(int((settings.get("embed_sharding") or {}).get("shard_size", 2048)),
                              encode_chunk(embedder))
    plan = EmbedPlan(as_of=as_of.isoformat(), model_id=embedder.model_id, calls=len(window_calls),
                     utterances=len(utterances), pending=len(pending), shard_size=size,
                     shards=shard_count(len(pending), size))
    folder = work_dir(paths, as_of, settings)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    _write_atomically(pd.DataFrame({"content_hash": list(pending), "text": list(pending.values())}),
                      folder / PENDING_FILE)
    (folder / PLAN_FILE).write_text(json.dumps(asdict(plan)), encoding="utf-8")
    log.info("embedding plan for %s: %d calls, %d utterances, %d texts already embedded, %d to embed in %d "
             "shards of %d (%s)", as_of, plan.calls, plan.utterances, len(set(hashes)) - plan.pending,
             plan.pending, plan.shards, size, folder)
    return plan


def embed_shard(folder: Path, shard: int, settings: Any, embedder: Any | None = None) -> ShardReport:
    """Encode shard ``shard`` of the plan in ``folder`` and write its vectors to ``shard-NNNNN.parquet``."""
    import numpy as np

    from insights.embedding import embedder_from_config
    from pipelines.run_log import worker_name

    started = datetime.now(UTC)
    plan = _read_plan(folder)
    if not 0 <= shard < plan.shards:
        raise ValueError(f"shard {shard} is outside the plan's {plan.shards} shards ({folder})")
    embedder = embedder or embedder_from_config(settings["embedding"])
    if embedder.model_id != plan.model_id:
        raise RuntimeError(f"shard {shard}: the plan was made for {plan.model_id}, this worker has "
                           f"{embedder.model_id}; every worker must use the same embedding settings")
    if aligned_shard_size(plan.shard_size, encode_chunk(embedder)) != plan.shard_size:
        raise RuntimeError(f"shard {shard}: shard size {plan.shard_size} is not a whole number of this worker's "
                           f"encode batches; every worker must use the same embedding settings")
    pending = pd.read_parquet(folder / PENDING_FILE)
    part = pending.iloc[shard * plan.shard_size:(shard + 1) * plan.shard_size]
    vectors = np.asarray(embedder.encode(list(part["text"])), dtype=np.float32)
    path = folder / f"shard-{shard:05d}.parquet"
    _write_atomically(pd.DataFrame({"content_hash": list(part["content_hash"]), "model_id": plan.model_id,
                                    "vector": list(vectors)}), path)
    report = ShardReport(shard=shard, texts=len(part), vectors=len(vectors), model_id=plan.model_id,
                         path=str(path), worker=worker_name(), started_at=started.isoformat(),
                         ended_at=datetime.now(UTC).isoformat())
    path.with_suffix(".json").write_text(json.dumps(asdict(report)), encoding="utf-8")
    log.info("embedding shard %d/%d: %d texts -> %s on %s", shard + 1, plan.shards, len(part), path.name,
             report.worker)
    return report


def shard_reports(folder: Path) -> list[ShardReport]:
    """Return the reports the shard tasks left in ``folder``, in shard order."""
    return [ShardReport(**json.loads(p.read_text(encoding="utf-8"))) for p in sorted(folder.glob("shard-*.json"))]


def merge_embedding(paths: RunPaths, as_of: date, settings: Any, keep_files: bool = False) -> EmbedReport:
    """Load every shard's vectors into ``embedding_cache`` (existing keys kept) and remove the work folder."""
    folder = work_dir(paths, as_of, settings)
    plan = _read_plan(folder)
    files = [folder / f"shard-{shard:05d}.parquet" for shard in range(plan.shards)]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"embedding shards missing in {folder}: {', '.join(missing)}")
    with Warehouse(paths.warehouse).session() as session:
        if files:
            rows = session.scalar("select count(*) from read_parquet($files)", {"files": [str(f) for f in files]})
            if rows != plan.pending:
                raise RuntimeError(f"embedding shards in {folder} hold {rows} vectors, the plan has {plan.pending}")
            session.execute("insert or ignore into embedding_cache (content_hash, model_id, vector) "
                            "select content_hash, model_id, vector::float[] from read_parquet($files)",
                            {"files": [str(f) for f in files]})
    if not keep_files:
        shutil.rmtree(folder, ignore_errors=True)
    report = EmbedReport(calls=plan.calls, utterances=plan.utterances, new_embeddings=plan.pending,
                         model_id=plan.model_id, shards=plan.shards)
    log.info("embedding: %s", report)
    return report


def embed_all_shards(paths: RunPaths, as_of: date, settings: Any, embedder: Any | None = None) -> EmbedReport:
    """Run plan, every shard and the merge in this process (the CLI path): the same steps as the DAG."""
    from insights.embedding import embedder_from_config

    embedder = embedder or embedder_from_config(settings["embedding"])
    plan = plan_embedding(paths, as_of, settings, embedder)
    folder = work_dir(paths, as_of, settings)
    for shard in range(plan.shards):
        embed_shard(folder, shard, settings, embedder)
    return merge_embedding(paths, as_of, settings)


def cached_vectors(session: Session, hashes: list[str], model_id: str) -> dict[str, np.ndarray]:
    """Return the cached vectors of these content hashes for ``model_id`` (missing hashes are absent)."""
    if not hashes:
        return {}
    rows = session.frame(
        "select content_hash, vector from embedding_cache "
        "where model_id = $model_id and content_hash in (select unnest($hashes))",
        {"model_id": model_id, "hashes": hashes},
    )
    return {h: np.asarray(v, dtype=np.float32) for h, v in zip(rows["content_hash"], rows["vector"], strict=True)}


def stacked_vectors(vectors: Mapping[str, np.ndarray], hashes: list[str]) -> np.ndarray:
    """Return the vectors of ``hashes`` as one float32 matrix, in that order."""
    if not hashes:
        return np.zeros((0, 0), dtype=np.float32)
    return np.vstack([vectors[h] for h in hashes]).astype(np.float32)
