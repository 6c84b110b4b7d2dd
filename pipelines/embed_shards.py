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

``embed_all_shards`` (the CLI path, every shard in one process) makes that one ``encode`` call itself: the same
plan and the same batches, without the Parquet round trip through the work folder.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
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


@dataclass(frozen=True)
class _NightTexts:
    """The texts of one as-of date: what ``call_utterances`` and ``calls_in_window`` got, and what to embed."""

    calls: int
    utterances: int
    distinct: int
    pending: dict[str, str]  # content_hash -> text not yet in embedding_cache, in first-seen order
    rows: dict[str, pd.DataFrame]  # the partitions to write: call_utterances, calls_in_window


def _night_texts(session: Session, as_of: date, settings: Any, model_id: str) -> _NightTexts:
    """Return the date's utterances and window calls, and the distinct texts not cached for ``model_id``."""
    from insights.intents import load_taxonomy
    from insights.text import content_hash, customer_utterances

    example_texts = list(load_taxonomy(settings["insight"].get("taxonomy")).examples["text"])
    turns = session.model_frame("insight/customer_turns_in_window", {
        "as_of": as_of, "lookback_days": int(settings["windows"]["call_lookback_days"])})
    utterances = customer_utterances(turns, min_chars=int(settings["insight"]["min_utterance_chars"]))
    texts = list(utterances["text"])
    # one hash per distinct text, in the first-seen order embeddings_with_cache gives one unsharded encode call
    hash_of = {text: content_hash(text, model_id) for text in dict.fromkeys(example_texts + texts)}
    cached = cached_hashes(session, list(hash_of.values()), model_id)
    pending = {key: text for text, key in hash_of.items() if key not in cached}
    window_calls = turns.drop_duplicates("call_id")[["call_id", "customer_id", "started_at"]]
    rows = {"call_utterances": utterances.assign(content_hash=[hash_of[text] for text in texts], model_id=model_id),
            "calls_in_window": window_calls}
    return _NightTexts(calls=len(window_calls), utterances=len(utterances), distinct=len(hash_of), pending=pending,
                       rows=rows)


def _write_night(session: Session, as_of: date, night: _NightTexts) -> None:
    """Replace the date's ``call_utterances`` and ``calls_in_window`` partitions."""
    for table, rows in night.rows.items():
        session.replace_partition(table, as_of, rows)


def _planned(as_of: date, night: _NightTexts, settings: Any, embedder: Any) -> EmbedPlan:
    """Return the plan of a date's texts: shards of whole encode chunks."""
    size = aligned_shard_size(int((settings.get("embed_sharding") or {}).get("shard_size", 2048)),
                              encode_chunk(embedder))
    plan = EmbedPlan(as_of=as_of.isoformat(), model_id=embedder.model_id, calls=night.calls,
                     utterances=night.utterances, pending=len(night.pending), shard_size=size,
                     shards=shard_count(len(night.pending), size))
    log.info("embedding plan for %s: %d calls, %d utterances, %d texts already embedded, %d to embed in %d "
             "shards of %d", as_of, plan.calls, plan.utterances, night.distinct - plan.pending, plan.pending,
             plan.shards, size)
    return plan


def cache_rows(hashes: list[str], model_id: str, vectors: np.ndarray) -> pd.DataFrame:
    """Return ``embedding_cache`` rows (content_hash, model_id, vector) for ``vectors`` in ``hashes`` order.

    The vectors go into one Arrow fixed-size-list column that shares the float32 matrix's memory, so neither
    DuckDB nor Parquet converts 512 floats per row through Python objects.
    """
    import pyarrow as pa

    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] != len(hashes):
        raise ValueError(f"{len(hashes)} content hashes for vectors of shape {matrix.shape}")
    column = pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), matrix.shape[1])
    return pd.DataFrame({"content_hash": hashes, "model_id": model_id,
                         "vector": pd.arrays.ArrowExtensionArray(column)})


def plan_embedding(paths: RunPaths, as_of: date, settings: Any, embedder: Any | None = None) -> EmbedPlan:
    """Write the date's utterances and window calls, and the ordered list of texts still to embed."""
    from insights.embedding import embedder_from_config

    embedder = embedder or embedder_from_config(settings["embedding"])
    with Warehouse(paths.warehouse).session() as session:
        night = _night_texts(session, as_of, settings, embedder.model_id)
        _write_night(session, as_of, night)
    plan = _planned(as_of, night, settings, embedder)
    folder = work_dir(paths, as_of, settings)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    _write_atomically(pd.DataFrame({"content_hash": list(night.pending), "text": list(night.pending.values())}),
                      folder / PENDING_FILE)
    (folder / PLAN_FILE).write_text(json.dumps(asdict(plan)), encoding="utf-8")
    log.info("embedding plan written to %s", folder)
    return plan


def embed_shard(folder: Path, shard: int, settings: Any, embedder: Any | None = None) -> ShardReport:
    """Encode shard ``shard`` of the plan in ``folder`` and write its vectors to ``shard-NNNNN.parquet``."""
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
    _write_atomically(cache_rows(list(part["content_hash"]), plan.model_id, vectors), path)
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
    """Plan, encode and store the date's new texts in this process (the CLI path): the DAG's steps in one session.

    The same plan and shards as the DAG, without the work folder's Parquet files: a worker thread loads the model
    while the texts are read and cleaned, then encodes the shards one after another while this thread writes the
    utterances and stores the previous shard's vectors. The shards are cut on encode-chunk boundaries, so the
    vectors are bit-identical to one unsharded ``encode`` call. A stale work folder of the date is removed, as the
    merge would.
    """
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from insights.embedding import embedder_from_config, progress_at_debug

    embedder = embedder or embedder_from_config(settings["embedding"])
    shutil.rmtree(work_dir(paths, as_of, settings), ignore_errors=True)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed") as worker:
        # ONNX Runtime loads and runs the model without the GIL, so it overlaps the Python and DuckDB work here
        loaded = worker.submit(lambda: embedder.dimension)
        with Warehouse(paths.warehouse).session() as session:
            night = _night_texts(session, as_of, settings, embedder.model_id)
            plan = _planned(as_of, night, settings, embedder)
            hashes, texts = list(night.pending), list(night.pending.values())
            starts = range(0, plan.pending, plan.shard_size)
            failed = threading.Event()

            def encoded_shard(start: int) -> np.ndarray:
                if failed.is_set():  # after a failure no further shard is encoded
                    raise RuntimeError(f"embedding shard at text {start} skipped after an earlier failure")
                try:
                    with progress_at_debug():  # one line per shard below instead of the embedder's progress
                        return np.asarray(embedder.encode(texts[start:start + plan.shard_size]))
                except BaseException:
                    failed.set()
                    raise

            encoded = [worker.submit(encoded_shard, start) for start in starts]
            try:
                _write_night(session, as_of, night)
                loaded.result()
                for shard, (start, vectors) in enumerate(zip(starts, encoded, strict=True)):
                    shard_hashes = hashes[start:start + plan.shard_size]
                    # the keys were checked against the cache in this session, so a plain insert cannot collide
                    session.insert_frame("embedding_cache", cache_rows(shard_hashes, plan.model_id, vectors.result()))
                    log.info("embedding shard %d/%d: %d texts stored, %d/%d after %.1f s", shard + 1, plan.shards,
                             len(shard_hashes), start + len(shard_hashes), plan.pending,
                             time.perf_counter() - started)
            except BaseException:
                failed.set()
                raise
    report = EmbedReport(calls=plan.calls, utterances=plan.utterances, new_embeddings=plan.pending,
                         model_id=plan.model_id, shards=plan.shards)
    log.info("embedding: %s", report)
    return report


def cached_hashes(session: Session, hashes: list[str], model_id: str) -> set[str]:
    """Return which of these content hashes ``embedding_cache`` holds for ``model_id`` (no vectors are read)."""
    if not hashes:
        return set()
    rows = session.frame(
        "select content_hash from embedding_cache "
        "where model_id = $model_id and content_hash in (select unnest($hashes))",
        {"model_id": model_id, "hashes": hashes},
    )
    return set(rows["content_hash"])


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
