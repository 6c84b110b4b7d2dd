"""Sharded embedding: shards cut on encode-batch boundaries give bit-identical vectors to one unsharded call."""

from datetime import date

import numpy as np
import pytest

from insights.intents import load_taxonomy
from pipelines.config import load_settings
from pipelines.embed_shards import (
    aligned_shard_size,
    embed_all_shards,
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


def _cache(warehouse):
    with Warehouse(warehouse).session(read_only=True) as session:
        rows = session.frame("select content_hash, vector from embedding_cache")
    return {h: np.asarray(v, dtype=np.float32) for h, v in zip(rows["content_hash"], rows["vector"], strict=True)}


@pytest.mark.e2e
def test_sharded_vectors_are_bit_identical_to_one_unsharded_encode(loaded):
    from insights.embedding import UseOnnxEmbedder, embeddings_with_cache
    from insights.text import customer_utterances

    settings = load_settings(overrides={"embedding": {"batch_size": 8}, "embed_sharding": {"shard_size": 20}})
    embedder = UseOnnxEmbedder(batch_size=8)
    # the unsharded reference: every text of the night in one encode call, as before sharding
    with Warehouse(loaded.warehouse).session(read_only=True) as session:
        turns = session.model_frame("insight/customer_turns_in_window", {"as_of": AS_OF, "lookback_days": 30})
    examples = load_taxonomy(settings["insight"].get("taxonomy")).examples["text"]
    texts = list(examples) + list(customer_utterances(turns, min_chars=2)["text"])
    _, reference = embeddings_with_cache(texts, embedder, {})

    report = embed_all_shards(loaded, AS_OF, settings, embedder)

    assert report.shards == shard_count(len(reference), 24) >= 3
    stored = _cache(loaded.warehouse)
    assert set(stored) == set(reference) and report.new_embeddings == len(reference)
    assert all(np.array_equal(stored[key], reference[key]) for key in reference)
    # the check can fail: shards cut off batch boundaries (20 texts with batches of 8) change vectors
    keys = list(reference)
    text_of = {_hash(t, embedder): t for t in texts}
    pending = [text_of[key] for key in keys]
    cut = np.concatenate([embedder.encode(pending[i:i + 20]) for i in range(0, len(pending), 20)])
    assert not np.array_equal(cut, np.stack([reference[k] for k in keys]))
    assert not work_dir(loaded, AS_OF, settings).exists()

    # a rerun embeds nothing: no shards, the cache unchanged
    plan = plan_embedding(loaded, AS_OF, settings, embedder)
    assert (plan.pending, plan.shards) == (0, 0)
    assert merge_embedding(loaded, AS_OF, settings).new_embeddings == 0
    assert _cache(loaded.warehouse).keys() == stored.keys()


def _hash(text, embedder):
    from insights.text import content_hash

    return content_hash(text, embedder.model_id)
