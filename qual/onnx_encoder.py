"""An int8 route for the same sentence-transformers model: exported to ONNX, quantised, cached.

``Int8Embedder`` has the Embedder's face (``name``, ``version``, ``key``, ``dimension``,
``encode``) so ``CachedEmbedder``, the coders and the topic model take it unchanged. What it does:

* The first time a given source model is used on this machine, the whole sentence pipeline
  (the transformer, mean pooling over the attention mask, L2 normalisation) is exported with
  ``torch.onnx`` and quantised with ``onnxruntime.quantization.quantize_dynamic`` (int8
  weights with one scale per output channel, dynamic int8 activations). The result goes to this user's cache folder
  (:func:`qual.embed.machine_cache_dir`)/``onnx/<source version>-<recipe>/``, written to a
  temporary folder first and renamed into place, so a killed export leaves nothing half-made
  and two processes exporting at once both end with a whole model.
* Later constructions find that folder and only open it: neither torch nor
  sentence-transformers is imported to encode (the tokenizer is the model's own
  ``tokenizer.json``, read with the ``tokenizers`` package).
* A new source model (another ``version``: other weights, other config) gets another folder;
  the recipe tag (``RECIPE``) changes when the way of exporting changes.
* Its vectors differ a little from fp32's, so they are cached under their own model key
  (``<name>+int8@<source version>.<recipe>``), never mixed with fp32 vectors.
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
RECIPE = "q3"
ONNX_INSTALL_HINT = ("the int8 encoder needs ONNX Runtime and ONNX: pip install onnxruntime==1.32.0 "
                     "onnx==1.23.2 (or leave out --encoder int8 to use the fp32 encoder)")
MODEL_FILE = "model_int8.onnx"


def _require_onnxruntime():
    try:
        import onnxruntime
    except ImportError:   # also when it is hidden (sys.modules['onnxruntime'] = None)
        raise ModelError(f"onnxruntime is not installed; {ONNX_INSTALL_HINT}") from None
    return onnxruntime


class Int8Embedder:
    """A dynamically quantised int8 ONNX export of a sentence-transformers folder.

    ``source`` is the fp32 ``Embedder`` of the same folder (its ``version`` names the cache
    folder). ``cache_dir`` defaults to the per-user cache; with the cache turned off
    (``QUAL_CACHE_DIR=off``) the export lives in a temporary folder for this process only.
    ``exported`` is True when this construction had to export (False when it reused a cache).
    """

    def __init__(self, source, *, cache_dir: str | Path | None = None, batch_size: int | None = None,
                 threads: int | None = None):
        ort = _require_onnxruntime()
        self.source = source
        self.path = source.path
        self.batch_size = batch_size or source.batch_size
        self.name = f"{source.name}+int8"
        self.version = f"{source.version}.{RECIPE}"
        if cache_dir is None:
            from .embed import machine_cache_dir

            base = machine_cache_dir()
            cache_dir = (Path(base) / "onnx") if base is not None else Path(
                tempfile.mkdtemp(prefix="qual-onnx-"))
        self.folder = Path(cache_dir) / f"{source.version}-{RECIPE}"
        self.exported = False
        if not (self.folder / MODEL_FILE).exists():
            self._export()
            self.exported = True
        meta = json.loads((self.folder / "meta.json").read_text())
        self.max_seq_length = int(meta["max_seq_length"])
        self._dimension = int(meta["dimension"])
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(str(self.folder / MODEL_FILE), opts,
                                             providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        tok.enable_truncation(max_length=self.max_seq_length)
        tok.no_padding()     # padded per batch, to that batch's longest text
        self._tokenizer = tok

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def dimension(self) -> int:
        return self._dimension

    # -- export ---------------------------------------------------------------------------
    def _export(self) -> None:
        try:
            import onnx  # noqa: F401  (quantize_dynamic needs it)
            from onnxruntime.quantization import QuantType, quantize_dynamic
        except ImportError:
            raise ModelError(f"onnx is not installed; {ONNX_INSTALL_HINT}") from None
        import torch

        st = self.source.model            # the fp32 sentence-transformers model, loaded once
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

        self.folder.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{self.folder.name}-", dir=self.folder.parent))
        try:
            sample = tokenizer(["an example sentence to trace the graph", "a shorter one"],
                               padding=True, return_tensors="pt")
            args = (sample["input_ids"], sample["attention_mask"],
                    sample.get("token_type_ids", torch.zeros_like(sample["input_ids"])))
            fp32 = work / "model_fp32.onnx"
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
            # Per-channel weight scales: with one scale per tensor the vectors' cosine to fp32 is
            # ~0.95 on real answers, per channel ~0.99 (measured on inquiry_answers.csv).
            quiet = logging.getLogger().level
            logging.getLogger().setLevel(logging.ERROR)   # its "consider pre-processing" note
            try:
                quantize_dynamic(str(fp32), str(work / MODEL_FILE), weight_type=QuantType.QInt8,
                                 per_channel=True)
            finally:
                logging.getLogger().setLevel(quiet)
            fp32.unlink()
            for extra in work.glob("model_fp32.onnx*"):
                extra.unlink()
            shutil.copy(self.path / "tokenizer.json", work / "tokenizer.json")
            (work / "meta.json").write_text(json.dumps({
                "source": str(self.path), "source_name": self.source.name,
                "source_version": self.source.version, "recipe": RECIPE,
                "max_seq_length": max_len, "dimension": int(st.get_embedding_dimension()),
                "pad_id": int(tokenizer.pad_token_id or 0)}, indent=1))
            try:
                os.rename(work, self.folder)
            except OSError:          # another process finished first: keep its export
                if not (self.folder / MODEL_FILE).exists():
                    raise
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)

    # -- encoding -------------------------------------------------------------------------
    def _one(self, enc) -> np.ndarray:
        ids = np.asarray([enc.ids], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids),
                "token_type_ids": np.asarray([enc.type_ids], dtype=np.int64)}
        return self._session.run(None, {k: v for k, v in feed.items() if k in self._inputs})[0][0]

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
