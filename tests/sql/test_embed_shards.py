"""Sharded embedding: shards cut on encode-batch boundaries give bit-identical vectors to one unsharded call."""

import shutil
from datetime import date

import numpy as np
import pandas as pd
import pytest

from insights.intents import load_taxonomy
from pipelines.config import load_settings
from pipelines.embed_shards import (
    aligned_shard_size,
    cache_rows,
    embed_all_shards,
    embed_shard,
    merge_embedding,
    plan_embedding,
    shard_count,
    work_dir,
)
from pipelines.nightly import RunPaths, stage_load
from pipelines.warehouse import Warehouse

AS_OF = date(2026, 6, 30)


def test_shard_size_is_a_whole_number_of_encode_chunks():
    assert aligned_shard_size(20, 8) == 24
    assert aligned_shard_size(16, 8) == 16
    assert aligned_shard_size(1, 64) == 64
    assert shard_count(0, 24) == 0 and shard_count(24, 24) == 1 and shard_count(25, 24) == 2
    with pytest.raises(ValueError, match="positive"):
        aligned_shard_size(0, 8)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    from pipelines.demo import write_demo_data

    root = tmp_path_factory.mktemp("shards")
    demo = write_demo_data(root / "demo", customers=40, seed=11, as_of=AS_OF)
    paths = RunPaths(landing=demo.landing_dir, warehouse=root / "wh.duckdb", exports=root / "exports")
    stage_load(paths, AS_OF, load_settings())
    return paths


def _cache(warehouse, model_id=None):
    with Warehouse(warehouse).session(read_only=True) as session:
        rows = session.frame("select content_hash, vector from embedding_cache where model_id = coalesce($model_id, "
                             "model_id)", {"model_id": model_id})
    return {h: np.asarray(v, dtype=np.float32) for h, v in zip(rows["content_hash"], rows["vector"], strict=True)}


def _copy(paths, name):
    """Return RunPaths on a copy of the warehouse file (for a second run from the same starting point)."""
    copy = paths.warehouse.with_name(f"{name}.duckdb")
    shutil.copyfile(paths.warehouse, copy)
    return RunPaths(landing=paths.landing, warehouse=copy, exports=paths.exports)


def _night_tables(warehouse):
    with Warehouse(warehouse).session(read_only=True) as session:
        return {table: session.frame(f"select * from {table} order by all") for table in
                ("call_utterances", "calls_in_window")}


@pytest.mark.e2e
def test_sharded_vectors_are_bit_identical_to_one_unsharded_encode(loaded):
    from insights.embedding import UseOnnxEmbedder, embeddings_with_cache
    from insights.text import customer_utterances

    settings = load_settings(overrides={"embedding": {"batch_size": 8}, "embed_sharding": {"shard_size": 20}})
    embedder = UseOnnxEmbedder(batch_size=8)
    in_process = _copy(loaded, "in_process")
    # the unsharded reference: every text of the night in one encode call, as before sharding
    with Warehouse(loaded.warehouse).session(read_only=True) as session:
        turns = session.model_frame("insight/customer_turns_in_window", {"as_of": AS_OF, "lookback_days": 30})
    examples = load_taxonomy(settings["insight"].get("taxonomy")).examples["text"]
    texts = list(examples) + list(customer_utterances(turns, min_chars=2)["text"])
    _, reference = embeddings_with_cache(texts, embedder, {})

    # the DAG's steps: plan, every shard through its Parquet file, merge
    plan = plan_embedding(loaded, AS_OF, settings, embedder)
    folder = work_dir(loaded, AS_OF, settings)
    for shard in range(plan.shards):
        embed_shard(folder, shard, settings, embedder)
    report = merge_embedding(loaded, AS_OF, settings)

    assert report.shards == plan.shards == shard_count(len(reference), 24) >= 3
    stored = _cache(loaded.warehouse)
    assert set(stored) == set(reference) and report.new_embeddings == len(reference)
    assert all(np.array_equal(stored[key], reference[key]) for key in reference)
    # the check can fail: shards cut off batch boundaries (20 texts with batches of 8) change vectors
    keys = list(reference)
    text_of = {_hash(t, embedder): t for t in texts}
    pending = [text_of[key] for key in keys]
    cut = np.concatenate([embedder.encode(pending[i:i + 20]) for i in range(0, len(pending), 20)])
    assert not np.array_equal(cut, np.stack([reference[k] for k in keys]))
    assert not folder.exists()

    # the CLI path (every shard in this process, no Parquet files) stores the same rows and the same vectors
    assert embed_all_shards(in_process, AS_OF, settings, embedder) == report
    in_process_cache = _cache(in_process.warehouse)
    assert in_process_cache.keys() == stored.keys()
    assert all(np.array_equal(in_process_cache[key], stored[key]) for key in stored)
    for table, frame in _night_tables(loaded.warehouse).items():
        pd.testing.assert_frame_equal(_night_tables(in_process.warehouse)[table], frame)

    # a rerun embeds nothing: no shards, the cache unchanged
    plan = plan_embedding(loaded, AS_OF, settings, embedder)
    assert (plan.pending, plan.shards) == (0, 0)
    assert merge_embedding(loaded, AS_OF, settings).new_embeddings == 0
    assert _cache(loaded.warehouse).keys() == stored.keys()
    assert embed_all_shards(in_process, AS_OF, settings, embedder).new_embeddings == 0
    assert _cache(in_process.warehouse).keys() == stored.keys()


class _ShardRecorder:
    """A fake embedder with batches of 4 that records its encode calls and can fail on one of them."""

    model_id = "fake:shards-v1"
    dimension = 3
    batch_size = 4

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.calls: list[list[str]] = []
        self.fail_on_call = fail_on_call

    def encode(self, texts):
        self.calls.append(list(texts))
        if len(self.calls) == self.fail_on_call:
            raise RuntimeError("encoder failed")
        rows = [[len(text), sum(map(ord, text)) % 97, 1.0] for text in texts]
        return np.asarray(rows, dtype=np.float32)


def test_in_process_embedding_encodes_the_plans_shards_in_order(loaded):
    settings = load_settings(overrides={"embed_sharding": {"shard_size": 6}})  # 8 texts a shard: 2 batches of 4
    paths, planned = _copy(loaded, "recorded"), _copy(loaded, "planned")
    embedder = _ShardRecorder()
    stale = work_dir(paths, AS_OF, settings)
    stale.mkdir(parents=True)

    report = embed_all_shards(paths, AS_OF, settings, embedder)

    plan = plan_embedding(planned, AS_OF, settings, embedder)
    pending = list(pd.read_parquet(work_dir(planned, AS_OF, settings) / "pending.parquet")["text"])
    # one encode call per shard of the plan, over the plan's pending texts in the plan's order
    assert report.shards == plan.shards >= 3 and report.new_embeddings == plan.pending == len(pending)
    assert embedder.calls == [pending[start:start + 8] for start in range(0, len(pending), 8)]
    assert not stale.exists()
    cache = _cache(paths.warehouse, embedder.model_id)
    assert set(cache) == {_hash(text, embedder) for text in pending}
    assert all(np.array_equal(cache[_hash(text, embedder)], embedder.encode([text])[0]) for text in pending)


def test_in_process_embedding_stops_at_a_failed_shard(loaded):
    settings = load_settings(overrides={"embed_sharding": {"shard_size": 4}})
    paths = _copy(loaded, "failing")
    embedder = _ShardRecorder(fail_on_call=1)
    with pytest.raises(RuntimeError, match="encoder failed"):
        embed_all_shards(paths, AS_OF, settings, embedder)
    shards = plan_embedding(_copy(loaded, "failing_plan"), AS_OF, settings, _ShardRecorder()).shards
    assert shards >= 2 and len(embedder.calls) == 1  # the shards after the failed one are not encoded
    assert _cache(paths.warehouse, embedder.model_id) == {}


def test_cache_rows_share_the_vectors_and_check_their_count():
    vectors = np.arange(6, dtype=np.float32).reshape(2, 3) / 7
    rows = cache_rows(["a", "b"], "m", vectors)
    assert list(rows.columns) == ["content_hash", "model_id", "vector"]
    assert list(rows["model_id"]) == ["m", "m"]
    np.testing.assert_array_equal(np.asarray(rows["vector"].iloc[1], dtype=np.float32), vectors[1])
    with pytest.raises(ValueError, match="3 content hashes"):
        cache_rows(["a", "b", "c"], "m", vectors)


def _hash(text, embedder):
    from insights.text import content_hash

    return content_hash(text, embedder.model_id)
