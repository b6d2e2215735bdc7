"""Probe: fine-tune the top layers of MiniLM on the coder's training pool, then code with the
tuned vectors (README "How good is the coding?", what was tried; dropped).

    python bench/finetune_probe.py [FOLDS] [EPOCHS] [TOP] [replace|concat]

FOLDS: which of bench/real_cv.py's 5 grouped folds to run (e.g. ``0`` or ``0,1,2,3,4``);
EPOCHS (2); TOP: how many of the 6 transformer layers are trained (2; the lower ones are run
once per text and cached); ``replace`` codes with the tuned vectors in place of the frozen
ones, ``concat`` with both side by side. The head is a linear layer per theme trained with a
class-balanced binary cross-entropy weighted as the pool's rows are (codebook examples 0.3,
reference answers 1). For each fold it prints the fine-tune time, then the fold's figures on
the real answers and on the two written sets, frozen (``base``) against tuned.
"""
import copy
import os
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ["HF_HUB_OFFLINE"] = "1"
import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.model_selection import GroupKFold  # noqa: E402
from qual.codebook import load_codebook  # noqa: E402
from qual.coder import HybridCoder  # noqa: E402
from qual.embed import CachedEmbedder, Embedder  # noqa: E402
from qual.evaluate import agreement, read_labelled_csv  # noqa: E402
from qual.store import VectorCache  # noqa: E402
torch.set_num_threads(2); torch.manual_seed(0); random.seed(0)
folds_to_run = [int(x) for x in (sys.argv[1] if len(sys.argv) > 1 else "0").split(",")]
EPOCHS = int(sys.argv[2]) if len(sys.argv) > 2 else 2
TOP = int(sys.argv[3]) if len(sys.argv) > 3 else 2
MODE = sys.argv[4] if len(sys.argv) > 4 else "replace"
cb = load_codebook(); themes = cb.theme_ids
base_enc = CachedEmbedder(Embedder(None), VectorCache(REPO / "bench" / "out" / "vectors.sqlite"))
st = Embedder(None).model; tok = st.tokenizer; bert0 = st[0].auto_model.eval()
real = read_labelled_csv(REPO.parent / "shared" / "data" / "inquiry" / "dev_consensus.csv", themes)
L = len(bert0.encoder.layer); CUT = L - TOP

lower_cache = {}
def lower(texts, bert):
    """hidden states after layer CUT, unpadded, per text (cached; lower layers frozen)."""
    need = [t for t in dict.fromkeys(texts) if t not in lower_cache]
    order = sorted(need, key=len)
    with torch.no_grad():
        for i in range(0, len(order), 32):
            part = order[i:i+32]
            f = tok(part, padding=True, truncation=True, max_length=256, return_tensors="pt")
            hs = bert(**f, output_hidden_states=True).hidden_states[CUT]
            for j, t in enumerate(part):
                n = int(f["attention_mask"][j].sum())
                lower_cache[t] = hs[j, :n].clone()
    return [lower_cache[t] for t in texts]

def top_forward(layers, hs_list):
    T = max(h.shape[0] for h in hs_list)
    B = len(hs_list)
    h = torch.zeros(B, T, 384); m = torch.zeros(B, T)
    for i, x in enumerate(hs_list):
        h[i, :x.shape[0]] = x; m[i, :x.shape[0]] = 1
    add = (1.0 - m[:, None, None, :]) * torch.finfo(torch.float32).min
    for layer in layers:
        r = layer(h, attention_mask=add); h = r[0] if isinstance(r, tuple) else r
    pooled = (h * m[..., None]).sum(1) / m.sum(1, keepdim=True)
    return torch.nn.functional.normalize(pooled, dim=1)

class Tuned:
    def __init__(self, layers): self.layers = layers; self.key = "tuned"
    def encode(self, texts, show_progress=False):
        texts = list(texts); out = np.zeros((len(texts), 384), np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        hs = lower(texts, bert0)
        with torch.no_grad():
            for i in range(0, len(order), 32):
                idx = order[i:i+32]
                out[idx] = top_forward(self.layers, [hs[k] for k in idx]).numpy()
        if MODE == "concat":
            out = np.hstack([out, base_enc.encode(texts)]) / np.sqrt(2)
        return out

def finetune(pool):
    pool = pool[pool.themes.notna()].reset_index(drop=True)
    texts = pool.text.tolist()
    Y = torch.tensor([[t in ts for t in themes] for ts in pool.themes], dtype=torch.float32)
    w = torch.tensor(pool.weight.to_numpy(), dtype=torch.float32)
    pos = (Y * w[:, None]).sum(0); neg = ((1 - Y) * w[:, None]).sum(0)
    pw = neg / pos.clamp(min=1e-6)
    t0 = time.perf_counter(); hs = lower(texts, bert0); t_low = time.perf_counter() - t0
    layers = torch.nn.ModuleList([copy.deepcopy(l) for l in bert0.encoder.layer[CUT:]]).train()
    head = torch.nn.Linear(384, len(themes)); 
    opt = torch.optim.AdamW([{"params": layers.parameters(), "lr": 5e-5}, {"params": head.parameters(), "lr": 2e-3}], weight_decay=0.01)
    order = sorted(range(len(texts)), key=lambda i: hs[i].shape[0])
    batches = [order[i:i+16] for i in range(0, len(order), 16)]
    for ep in range(EPOCHS):
        random.shuffle(batches); t1 = time.perf_counter(); tot = 0
        for b in batches:
            e = top_forward(layers, [hs[i] for i in b])
            logits = head(e * 10)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, Y[b], pos_weight=pw, reduction="none").mean(1)
            loss = (loss * w[b]).sum() / w[b].sum()
            opt.zero_grad(); loss.backward(); opt.step(); tot += float(loss.detach())
        print(f"  epoch {ep}: loss {tot/len(batches):.3f} {time.perf_counter()-t1:.0f}s (lower {t_low:.0f}s, {len(texts)} texts)", flush=True)
    layers.eval()
    return Tuned(layers)

res = {"base": [], "tuned": []}
for k, (tr, te) in enumerate(GroupKFold(5).split(real, groups=real["source"])):
    if k not in folds_to_run: continue
    test = real.text.iloc[te].tolist()
    b = HybridCoder(cb, base_enc).fit(exclude_texts=test)
    pb = b.predict(texts=test)
    t0 = time.perf_counter()
    enc = finetune(b._pool(None, test))
    c = HybridCoder(cb, enc).fit(exclude_texts=test)
    pt = c.predict(texts=test)
    print(f"fold {k}: fine-tune+fit {time.perf_counter()-t0:.0f}s", flush=True)
    for name, p in (("base", pb), ("tuned", pt)):
        for i, r in zip(te, p.to_dict("records")):
            res[name].append((i, r["themes"], r["polarity"]))
    # written sets with the tuned coder of this fold
    for nm in ("dev_turns.csv", "dev_formal.csv"):
        g = read_labelled_csv(REPO / "bench" / "data" / nm, themes)
        for name, cod in (("base", b), ("tuned", c)):
            p = cod.predict(texts=g.text.tolist())
            a = agreement(g.themes.tolist(), p.themes.tolist(), themes, gold_polarity=g.polarity.tolist(), predicted_polarity=p.polarity.tolist())
            print(f"  {nm} {name}: exact {a['exact_match']:.3f} kappa " + "/".join(f"{a['themes'][t]['kappa']:.2f}" for t in themes) + f" pol {a['polarity_accuracy']:.3f}")
for name, rows in res.items():
    idx = [r[0] for r in rows]; g = real.iloc[idx]
    a = agreement(g.themes.tolist(), [r[1] for r in rows], themes, gold_polarity=g.polarity.tolist(), predicted_polarity=[r[2] for r in rows])
    print(f"real {name} ({len(rows)}): exact {a['exact_match']:.3f} kappa " + "/".join(f"{a['themes'][t]['kappa']:.2f}" for t in themes) + f" noneP {a['none']['precision']:.2f} noneR {a['none']['recall']:.2f} pol {a['polarity_accuracy']:.3f}")
