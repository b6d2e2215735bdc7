"""ONNX routes for the same sentence-transformers model: exported locally once, then cached.

``OnnxEmbedder`` (``--encoder onnx``, the default) runs the fp32 model with ONNX Runtime;
``Int8Embedder`` (``--encoder int8``) runs a dynamically quantised int8 copy. Both have the
Embedder's face (``name``, ``version``, ``key``, ``dimension``, ``encode``) so
``CachedEmbedder``, the coders and the topic model take them unchanged. What they do:

* The first time a given source model is used on this machine, the whole sentence pipeline
  (the transformer, mean pooling over the attention mask, L2 normalisation) is exported with
  ``torch.onnx``; for int8 it is then quantised with
  ``onnxruntime.quantization.quantize_dynamic`` (int8 weights with one scale per output
  channel, dynamic int8 activations). The result goes to this user's cache folder
  (:func:`qual.embed.machine_cache_dir`)/``onnx/<source version>-<recipe>/``, written to a
  temporary folder first and renamed into place, so a killed export leaves nothing half-made
  and two processes exporting at once both end with a whole model.
* Later constructions find that folder and only open it: neither torch nor
  sentence-transformers is imported to encode (the tokenizer is the model's own
  ``tokenizer.json``, read with the ``tokenizers`` package).
* A new source model (another ``version``: other weights, other config) gets another folder;
  the recipe tag changes when the way of exporting changes.
* Each route's vectors are cached under their own model key
  (``<name>+onnx@<source version>.<recipe>``, ``<name>+int8@...``), never mixed with the
  PyTorch route's (``--encoder fp32``). The fp32 ONNX vectors equal PyTorch's to within
  float rounding (cosine > 0.99999); int8's differ a little more (README, "Speed").
* Only a model that mean-pools its transformer's tokens (as all-MiniLM-L6-v2 does) is
  exported: the exported graph pools that way, so another pooling is refused with a message
  that names ``--encoder fp32``.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .errors import ModelError

#: Changes whenever the export or quantisation recipe changes (a new cache folder follows).
RECIPE = "q3"            # int8
FP32_RECIPE = "f1"       # fp32 ONNX
ONNX_INSTALL_HINT = ("the onnx and int8 encoders need ONNX Runtime and ONNX: pip install "
                     "onnxruntime==1.32.0 onnx==1.23.2 (or use --encoder fp32, the same model "
                     "on PyTorch)")
MODEL_FILE = "model_int8.onnx"
FP32_MODEL_FILE = "model_fp32.onnx"
#: The fp32 route's batch shape: FP32_BATCH rows (texts, and padding rows when fewer are
#: left) by the texts' longest token count rounded up to FP32_WIDTH. ONNX Runtime's results
#: for a row move in the last float bit with the batch's shape (rows and width), so the shape
#: is fixed per width: a text's vector is then bitwise the same whatever it is encoded with,
#: as the vector caches assume. On 2 cores batches of 8-16 encoded fastest.
FP32_BATCH = 8
FP32_WIDTH = 16


def _require_onnxruntime():
    try:
        import onnxruntime
    except ImportError:   # also when it is hidden (sys.modules['onnxruntime'] = None)
        raise ModelError(f"onnxruntime is not installed; {ONNX_INSTALL_HINT}") from None
    return onnxruntime


class OnnxEmbedder:
    """An fp32 ONNX export of a sentence-transformers folder, run by ONNX Runtime.

    ``source`` is the PyTorch ``Embedder`` of the same folder (its ``version`` names the cache
    folder; it loads the model only to export). ``cache_dir`` defaults to the per-user cache;
    with the cache turned off (``QUAL_CACHE_DIR=off``) the export is made in a temporary folder
    for this process, which is removed once the model is loaded. ``exported`` is True when this construction had to export (False
    when it reused a cache).
    """

    quantize = False
    tag = "onnx"
    recipe = FP32_RECIPE
    model_file = FP32_MODEL_FILE

    def __init__(self, source, *, cache_dir: str | Path | None = None, batch_size: int | None = None,
                 threads: int | None = None):
        ort = _require_onnxruntime()
        self.source = source
        self.path = source.path
        # texts per call to the progress bar (int8 runs each text alone; fp32's batch shape is
        # FP32_BATCH, fixed, since a text's vector must not depend on it)
        self.batch_size = batch_size or source.batch_size
        self.name = f"{source.name}+{self.tag}"
        self.version = f"{source.version}.{self.recipe}"
        temporary = None
        if cache_dir is None:
            from .embed import machine_cache_dir

            base = machine_cache_dir()
            if base is None:        # cache off: export for this process, then remove it
                temporary = Path(tempfile.mkdtemp(prefix="qual-onnx-"))
            cache_dir = (Path(base) / "onnx") if base is not None else temporary
        self.folder = Path(cache_dir) / f"{source.version}-{self.recipe}"
        self.exported = False
        if not (self.folder / self.model_file).exists():
            self._export()
            self.exported = True
        meta = json.loads((self.folder / "meta.json").read_text())
        self.max_seq_length = int(meta["max_seq_length"])
        self._dimension = int(meta["dimension"])
        self._pad_id = int(meta.get("pad_id", 0))
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(str(self.folder / self.model_file), opts,
                                             providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        tok.enable_truncation(max_length=self.max_seq_length)
        tok.no_padding()     # padded per batch, to that batch's longest text
        self._tokenizer = tok
        if temporary is not None:   # the session and tokenizer hold the model in memory now
            shutil.rmtree(temporary, ignore_errors=True)

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def dimension(self) -> int:
        return self._dimension

    # -- export ---------------------------------------------------------------------------
    def _export(self) -> None:
        try:
            import onnx  # noqa: F401  (torch.onnx.export and quantize_dynamic need it)
        except ImportError:
            raise ModelError(f"onnx is not installed; {ONNX_INSTALL_HINT}") from None
        import torch

        st = self.source.model            # the fp32 sentence-transformers model, loaded once
        _check_mean_pooling(st, self.path)
        transformer = st[0].auto_model
        tokenizer = st.tokenizer
        max_len = int(st.get_max_seq_length() or 256)

        class Sentence(torch.nn.Module):
            """The transformer, mean pooling over real tokens and L2 normalisation."""

            def __init__(self, model):
                super().__init__()
                self.model = model

            def forward(self, input_ids, attention_mask, token_type_ids):
                hidden = self.model(input_ids=input_ids, attention_mask=attention_mask,
                                    token_type_ids=token_type_ids).last_hidden_state
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

        try:
            self.folder.parent.mkdir(parents=True, exist_ok=True)
            work = Path(tempfile.mkdtemp(prefix=f".{self.folder.name}-", dir=self.folder.parent))
        except OSError as exc:
            raise self._write_error(exc) from None
        try:
            sample = tokenizer(["an example sentence to trace the graph", "a shorter one"],
                               padding=True, return_tensors="pt")
            args = (sample["input_ids"], sample["attention_mask"],
                    sample.get("token_type_ids", torch.zeros_like(sample["input_ids"])))
            fp32 = work / FP32_MODEL_FILE
            axes = {0: "batch", 1: "tokens"}
            module = Sentence(transformer).eval()
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")      # tracer notes on shapes: axes are dynamic
                torch.onnx.export(module, args, str(fp32), dynamo=False, opset_version=17,
                                  input_names=["input_ids", "attention_mask", "token_type_ids"],
                                  output_names=["embedding"],
                                  dynamic_axes={"input_ids": axes, "attention_mask": axes,
                                                "token_type_ids": axes,
                                                "embedding": {0: "batch"}})
            if self.quantize:
                self._quantize(fp32, work / self.model_file)
                fp32.unlink()
                for extra in work.glob(f"{FP32_MODEL_FILE}*"):
                    extra.unlink()
            shutil.copy(self.path / "tokenizer.json", work / "tokenizer.json")
            (work / "meta.json").write_text(json.dumps({
                "source": str(self.path), "source_name": self.source.name,
                "source_version": self.source.version, "recipe": self.recipe,
                "max_seq_length": max_len, "dimension": int(st.get_embedding_dimension()),
                "pad_id": int(tokenizer.pad_token_id or 0)}, indent=1))
            try:
                os.rename(work, self.folder)
            except OSError:          # another process finished first: keep its export
                if not (self.folder / self.model_file).exists():
                    raise
        except OSError as exc:      # a full disk, a file size limit, a read-only cache
            raise self._write_error(exc) from None
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)

    def _write_error(self, exc: OSError) -> ModelError:
        return ModelError(
            f"cannot build the {self.tag} export of the model in {self.folder.parent}: "
            f"{exc.strerror or exc} (a full disk, a file size limit or a read-only folder); "
            "nothing was kept. Free some space, point QUAL_CACHE_DIR at another folder, or use "
            "--encoder fp32 (the same model on PyTorch, no export)")

    # -- encoding -------------------------------------------------------------------------
    def _feed(self, ids: np.ndarray, mask: np.ndarray) -> dict:
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        return {k: v for k, v in feed.items() if k in self._inputs}

    def encode(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
        """Unit-normalised float32 vectors, one row per text, bitwise the same for a text
        whatever else is encoded with it. Texts are grouped by their token count rounded up
        to ``FP32_WIDTH`` and run ``FP32_BATCH`` at a time in batches of exactly that shape
        (a last, short batch is filled with padding rows): in fp32 the attention mask hides
        padded positions, and a fixed shape keeps the arithmetic of each row the same."""
        texts = list(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for idx, vectors in self.encode_parts(texts, show_progress=show_progress):
            out[idx] = vectors
        return out

    def encode_parts(self, texts: list[str], part: int = 512, *, show_progress: bool = False):
        """:meth:`encode` in parts, for a caller that stores as it goes: yields (positions in
        ``texts``, their vectors) each time at least ``part`` texts are done, and at the end.
        The batches are formed over all of ``texts`` at once, so no group of texts of one
        width ends in a part-filled batch more than once (calling :meth:`encode` on slices
        of 512 padded one batch per width per slice: 2 % more work at study scale)."""
        from .embed import progress

        texts = list(texts)
        if not texts:
            return
        encs = self._tokenizer.encode_batch(texts)
        buckets: dict[int, list[int]] = {}
        for i, enc in enumerate(encs):
            width = -(-max(len(enc.ids), 1) // FP32_WIDTH) * FP32_WIDTH
            buckets.setdefault(width, []).append(i)
        rows = FP32_BATCH
        done_idx: list[int] = []
        done_vec: list[np.ndarray] = []
        with progress(len(texts), f"embedding ({self.tag})", enabled=show_progress) as bar:
            for width in sorted(buckets):
                members = buckets[width]
                for k in range(0, len(members), rows):
                    idx = members[k:k + rows]
                    ids = np.full((rows, width), self._pad_id, dtype=np.int64)
                    mask = np.zeros((rows, width), dtype=np.int64)
                    for r, i in enumerate(idx):
                        n = len(encs[i].ids)
                        ids[r, :n] = encs[i].ids
                        mask[r, :n] = 1
                    done_idx.extend(idx)
                    done_vec.append(self._session.run(None, self._feed(ids, mask))[0][:len(idx)])
                    bar.update(len(idx))
                    if len(done_idx) >= part:
                        yield done_idx, np.vstack(done_vec)
                        done_idx, done_vec = [], []
        if done_idx:
            yield done_idx, np.vstack(done_vec)


def _check_mean_pooling(st, path) -> None:
    """The exported graph mean-pools the transformer's tokens: refuse a model that pools
    otherwise (CLS token, max) or adds layers after pooling, rather than export wrong vectors."""
    names = [type(m).__name__ for m in st]
    pooling = next((m for m in st if type(m).__name__ == "Pooling"), None)
    mode = None
    if pooling is not None:          # sentence-transformers 6: pooling_mode; 3-5: flags
        mode = getattr(pooling, "pooling_mode", None)
        if mode is None and getattr(pooling, "pooling_mode_mean_tokens", False):
            mode = "mean"
    if names[:2] != ["Transformer", "Pooling"] or mode != "mean" or any(
            n not in {"Transformer", "Pooling", "Normalize"} for n in names):
        raise ModelError(
            f"this model's pipeline ({' -> '.join(names)}) is not a transformer with mean "
            "pooling, which is all the ONNX export reproduces; use --encoder fp32 for it",
            path=path)


class Int8Embedder(OnnxEmbedder):
    """A dynamically quantised int8 ONNX export of a sentence-transformers folder (opt-in:
    about twice the fp32 rate, but another coding for ~4 % of segments; README "Speed")."""

    quantize = True
    tag = "int8"
    recipe = RECIPE
    model_file = MODEL_FILE

    @staticmethod
    def _quantize(fp32: Path, out: Path) -> None:
        try:
            from onnxruntime.quantization import QuantType, quantize_dynamic
        except ImportError:
            raise ModelError(f"onnxruntime's quantisation is missing; {ONNX_INSTALL_HINT}") from None
        # Per-channel weight scales: with one scale per tensor the vectors' cosine to fp32 is
        # ~0.95 on real answers, per channel ~0.99 (measured on inquiry_answers.csv).
        quiet = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)   # its "consider pre-processing" note
        try:
            quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, per_channel=True)
        finally:
            logging.getLogger().setLevel(quiet)

    def _one(self, enc) -> np.ndarray:
        ids = np.asarray([enc.ids], dtype=np.int64)
        return self._session.run(None, self._feed(ids, np.ones_like(ids)))[0][0]

    def encode(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
        """Unit-normalised float32 vectors, one row per text.

        Each text goes through the model alone, unpadded. Dynamic quantisation takes each
        activation's int8 range from the whole input, padding included, so in a padded batch a
        text's vector would depend on its batch-mates (cosine down to ~0.96 between the same
        text alone and in a batch); alone it is the same in every run, as the cache assumes.
        On 2 cores this is no slower than batches of 64 (no padding to compute)."""
        from .embed import progress

        texts = list(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        with progress(len(texts), "embedding (int8)", enabled=show_progress) as bar:
            for i in range(0, len(texts), self.batch_size):
                part = texts[i:i + self.batch_size]
                for j, enc in enumerate(self._tokenizer.encode_batch(part)):
                    out[i + j] = self._one(enc)
                bar.update(len(part))
        return out

    def encode_parts(self, texts: list[str], part: int = 512, *, show_progress: bool = False):
        """Each text is encoded alone, so slices waste nothing: :func:`qual.embed.in_parts`."""
        from .embed import in_parts

        return in_parts(self, texts, part, show_progress=show_progress)
