"""The whole pipeline at study scale, through the real CLI: time, peak RSS, ratio to the encoder.

    python bench/scale.py N [--encoder onnx|fp32|int8] [--keep DIR]

1. Generates N one-hour interviews (~9,000 words each) from real turns of the Inquiry hearings
   (``../shared/data/inquiry/transcripts`` and ``dev_transcripts``): real interviewer questions,
   and answers built from runs of 1-4 consecutive sentences of real witness answers, so that no
   two segments are alike (the cache cannot hide work). Each interview is written as ``.txt``
   (``Interviewer:``/``Respondent:`` labels) and as ``.docx`` (one paragraph a turn); the corpus
   that is coded takes the even ones as txt and the odd ones as docx.
2. Runs, each in its own ``python -m qual`` subprocess, as a user would: ``ingest`` of the N
   txt files and of the same N as docx (throw-away stores: the docx/txt ratio), ``code`` of the
   corpus into a new store (the codebook's vectors already in the per-user cache, as on any
   machine after its first study), ``code`` again (unchanged corpus), ``topics``,
   ``summarise``, ``export`` csv, xlsx and qdpx.
3. Measures the raw encoder rate in this process on the same distinct segment texts
   (length-sorted batches of 64, model loaded beforehand), twice: just before ``code`` (the
   texts of the txt ingest) and after the pipeline (the coded store); the ratios use the two
   together, since on a shared machine the rate moves between minutes.

For each stage it prints wall time, the child's peak RSS (``wait4``), and the ratio to the raw
encoder: (segments / stage time) / (raw segments/s), i.e. raw encode time / stage time. ``code``
should reach >= 0.9 (issue 17). Run it at small N on a shared machine (N = 10-20).
The per-user cache is ``bench/out/scale-cache`` (not ``~/.cache``).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from machine import describe  # noqa: E402  (bench/machine.py, beside this file)

INQUIRY = REPO.parent / "shared" / "data" / "inquiry"
WORDS = 9_000
SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")


def real_turns():
    """(interviewer questions, witness answers as lists of sentences) from the hearings."""
    from qual.readers import read_transcript

    questions, answers = [], []
    files = sorted((INQUIRY / "transcripts").glob("*.rst")) + sorted(
        (INQUIRY / "dev_transcripts").glob("*.rst"))
    for f in files:
        t = read_transcript(f)
        for turn in t.turns:
            text = " ".join(t.turn_text(turn).split())
            if len(text.split()) < 4:
                continue
            if turn.role == "interviewer":
                questions.append(text)
            elif turn.role == "stakeholder":
                sents = [s for s in SENTENCE.split(text) if len(s.split()) >= 3]
                if sents:
                    answers.append(sents)
    return questions, answers, len(files)


def interview(rng, questions, answers) -> list[tuple[str, str]]:
    turns, words = [], 0
    while words < WORDS:
        q = rng.choice(questions)
        parts = []
        for _ in range(rng.randint(2, 4)):         # runs of consecutive real sentences
            sents = rng.choice(answers)
            i = rng.randrange(len(sents))
            parts.extend(sents[i:i + rng.randint(1, 4)])
        a = " ".join(parts)
        turns += [("Interviewer", q), ("Respondent", a)]
        words += len(q.split()) + len(a.split())
    return turns


def write_corpus(n: int, root: Path, seed: int = 17) -> dict:
    import docx

    questions, answers, nfiles = real_turns()
    rng = random.Random(seed)
    for sub in ("txt", "docx", "corpus"):
        (root / sub).mkdir(parents=True)
    words = paragraphs = 0
    for k in range(n):
        turns = interview(rng, questions, answers)
        words += sum(len(t.split()) for _, t in turns)
        paragraphs += len(turns)
        name = f"interview_{k + 1:04d}"
        text = "\n\n".join(f"{who}: {what}" for who, what in turns) + "\n"
        (root / "txt" / f"{name}.txt").write_text(text, encoding="utf-8")
        d = docx.Document()
        for who, what in turns:
            d.add_paragraph(f"{who}: {what}")
        d.save(root / "docx" / f"{name}.docx")
        pick = root / ("txt" if k % 2 == 0 else "docx") / f"{name}.{'txt' if k % 2 == 0 else 'docx'}"
        shutil.copy(pick, root / "corpus" / pick.name)
    return {"words": words, "paragraphs": paragraphs, "questions": len(questions),
            "answers": len(answers), "files": nfiles}


RAW = """
import sys, time
from qual.embed import make_embedder
from qual.store import Store
with Store(sys.argv[1], create=False) as store:
    texts = list(dict.fromkeys(store.segments(role="stakeholder")["text"].tolist()))
embedder = make_embedder(None, sys.argv[2])
embedder.encode(texts[:64])                  # load and warm
t0 = time.perf_counter()
embedder.encode(texts)
print(len(texts), time.perf_counter() - t0)
"""


def run_stage(args: list[str], cwd: Path, env: dict, log: Path) -> tuple[float, float, int]:
    """Run ``python -m qual ARGS``; return (seconds, peak RSS in MB, exit code)."""
    with open(log, "w") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "qual", *args], cwd=cwd, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return seconds, usage.ru_maxrss / 1024, proc.returncode


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int, help="number of one-hour interviews")
    from qual import DEFAULT_ENCODER, ENCODERS

    ap.add_argument("--encoder", choices=ENCODERS, default=DEFAULT_ENCODER)
    ap.add_argument("--keep", default=None, help="keep the corpus and stores in this folder")
    args = ap.parse_args(argv)

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="qual-scale-"))
    if args.keep and root.exists():
        shutil.rmtree(root)
    cache = REPO / "bench" / "out" / "scale-cache"
    env = {**os.environ, "QUAL_CACHE_DIR": str(cache), "PYTHONUNBUFFERED": "1"}
    enc = ["--encoder", args.encoder]
    try:
        t0 = time.perf_counter()
        info = write_corpus(args.n, root)
        print(f"{args.n} interviews from {info['answers']} real answers and {info['questions']} "
              f"questions of {info['files']} hearings: {info['words'] / args.n:,.0f} words and "
              f"{info['paragraphs'] / args.n:.0f} turns each (written in "
              f"{time.perf_counter() - t0:.1f} s)")
        print(f"machine: {describe()}")
        logs = root / "logs"
        logs.mkdir()
        # warm-up (not reported): the codebook's vectors into the per-user cache, the int8 export
        s, _, rc = run_stage(["code", str(REPO / "transcripts" / "interview_01_central_department.txt"),
                              "--db", str(root / "warm.db"), *enc], root, env, logs / "warm.log")
        assert rc == 0, (logs / "warm.log").read_text()[-2000:]
        db = str(root / "qual.db")
        stages = [
            ("ingest N txt", ["ingest", str(root / "txt"), "--db", str(root / "txt.db")]),
            ("ingest N docx", ["ingest", str(root / "docx"), "--db", str(root / "docx.db")]),
            ("code (new store)", ["code", str(root / "corpus"), "--db", db, *enc]),
            ("code (unchanged)", ["code", str(root / "corpus"), "--db", db, *enc]),
            ("topics", ["topics", "--db", db, "--output", str(root / "topics.csv")]),
            ("summarise", ["summarise", "--db", db, "--output", str(root / "summary")]),
            ("export csv", ["export", "--db", db, "--output", str(root / "coded.csv")]),
            ("export xlsx", ["export", "--db", db, "--output", str(root / "coded.xlsx")]),
            ("export qdpx", ["export", "--db", db, "--output", str(root / "study.qdpx")]),
        ]
        def raw_rate(db_path) -> tuple[int, float]:
            """(distinct segments, seconds) of the raw encoder on a store's stakeholder texts,
            in a subprocess of its own: a model loaded in this process would be inherited by
            every later stage's fork and show in its peak RSS."""
            out = subprocess.run([sys.executable, "-c", RAW, str(db_path), args.encoder],
                                 cwd=REPO, env=env, capture_output=True, text=True, check=True)
            n, seconds = out.stdout.split()
            return int(n), float(seconds)

        results, raws = [], []
        for label, a in stages:
            if label.startswith("code (new"):
                # the raw rate just before `code`, on the same texts (the txt ingest holds them)
                raws.append(raw_rate(root / "txt.db"))
            log = logs / (re.sub(r"\W+", "_", label) + ".log")
            s, rss, rc = run_stage(a, root, env, log)
            results.append((label, s, rss, rc))
            tail = log.read_text().strip().splitlines()[-1:] or [""]
            print(f"  {label:<18} {s:7.1f} s  {rss:7.0f} MB  exit {rc}  | {tail[0][:90]}",
                  flush=True)
        raws.append(raw_rate(db))                 # and after the pipeline, on the coded store
        n_texts = raws[-1][0]
        rate = sum(n for n, _ in raws) / sum(t for _, t in raws)
        raw = n_texts / rate
        print(f"\nraw {args.encoder} encoder (length-sorted batches, model loaded): "
              + ", ".join(f"{n} segments in {t:.1f} s = {n / t:.1f}/s" for n, t in raws)
              + f" (before `code` and after the pipeline); {rate:.1f} segments/s together")
        print(f"{'stage':<18} {'time':>8} {'peak RSS':>9} {'segments/s':>11} {'ratio to raw':>13}")
        for label, s, rss, rc in results:
            print(f"{label:<18} {s:7.1f}s {rss:7.0f}MB {n_texts / s:11.1f} {raw / s:13.2f}"
                  + ("" if rc == 0 else f"  (exit {rc})"))
        by = {label: s for label, s, *_ in results}
        print(f"docx/txt ingest: {by['ingest N docx'] / by['ingest N txt']:.2f}x; projected "
              f"`code` for 1,000 interviews at this rate: "
              f"{by['code (new store)'] * 1000 / args.n / 60:.0f} min")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
