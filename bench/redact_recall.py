"""Recall and precision of qual.redact on the planted-PII transcript and on the blind set.

    python bench/redact_recall.py [--no-ner]

Two sets are scored. The planted transcript (below) was written with the patterns, so its
figures are optimistic. ``bench/data/redact_blind/`` was written by another helper who had not
seen the patterns (see its README): four transcripts, their metadata.csv, and key.csv
(``file,kind,text,start,end,must_redact``). Each transcript is read with the project's reader
and its metadata row, redacted, and scored per kind: a keyed item is caught when no character
of it is left un-redacted (for a phone number with an extension, the digits before ``ext``);
a decoy (``must_redact=0``) is a false positive when any of its characters is redacted.

Reads tests/data/redact/planted.txt (markup ``[[KIND:value]]`` for planted items and
``[[NOT:value]]`` for look-alikes), strips the markup, reads the plain transcript with the
project's reader (so speaker labels become turns, as in real use), redacts it, and prints recall
per kind and precision, without NER and -- when a trained spaCy pipeline is installed -- with it.
A planted item counts as found when a replacement of the same kind covers it entirely.
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLANTED = ROOT / "tests" / "data" / "redact" / "planted.txt"
# Names a user would list in redact.txt for this interview (people the NER may miss).
EXTRA_NAMES = ("Gareth Llewellyn", "Siobhan Kelly")
METADATA = {"interviewers": ["Alex Morgan"], "stakeholders": ["Priya Shah"],
            "organisation": "Department for Regional Services"}

_MARK = re.compile(r"\[\[([A-Z]+):(.*?)\]\]")


def load_planted(path=PLANTED):
    """``(plain_text, gold)``; gold is a list of ``(kind, start, end, value)`` in plain text."""
    raw = Path(path).read_text(encoding="utf-8")
    out, gold, pos, last = [], [], 0, 0
    for m in _MARK.finditer(raw):
        out.append(raw[last:m.start()])
        pos += m.start() - last
        value = m.group(2)
        gold.append((m.group(1), pos, pos + len(value), value))
        out.append(value)
        pos += len(value)
        last = m.end()
    out.append(raw[last:])
    return "".join(out), gold


def read_planted(tmpdir, path=PLANTED):
    """The planted transcript read by qual's reader, and the gold spans mapped onto its text."""
    from qual.readers import read_transcript

    text, gold = load_planted(path)
    f = Path(tmpdir) / "planted.txt"
    f.write_text(text, encoding="utf-8")
    t = read_transcript(f, metadata=METADATA)
    # The reader may normalise whitespace; map gold spans by searching each value in order.
    mapped, cursor = [], 0
    for kind, _s, _e, value in gold:
        i = t.text.find(value, cursor)
        if i < 0:
            raise AssertionError(f"planted value {value!r} not found in the read text")
        mapped.append((kind, i, i + len(value), value))
        cursor = i + len(value)
    return t, mapped


def score(replacements, gold):
    """Per-kind recall, overall precision and the missed / false-positive items. Only the
    replacements in the text count (not those of speaker labels or metadata)."""
    replacements = [r for r in replacements if getattr(r, "field", "text") == "text"]
    per = {}
    missed = []
    for kind, s, e, value in gold:
        if kind == "NOT":
            continue
        hit = any(r.kind == kind and r.start <= s and e <= r.end for r in replacements)
        k = per.setdefault(kind, [0, 0])
        k[1] += 1
        k[0] += hit
        if not hit:
            missed.append((kind, value))
    planted = [(s, e) for kind, s, e, _ in gold if kind != "NOT"]
    false_pos = [r for r in replacements
                 if not any(r.start < e and s < r.end for s, e in planted)]
    precision = 1 - len(false_pos) / max(1, len(replacements))
    looks = [(v, any(r.start < e and s < r.end for r in replacements))
             for kind, s, e, v in gold if kind == "NOT"]
    return {"recall": {k: v[0] / v[1] for k, v in per.items()},
            "counts": per, "precision": precision, "missed": missed,
            "false_positives": false_pos, "lookalikes_hit": [v for v, hit in looks if hit]}


def run(nlp, tmpdir):
    from qual.redact import redact

    t, gold = read_planted(tmpdir)
    labels = {(tn.start - len(tn.speaker) - 2) for tn in t.turns}
    mention_gold = [g for g in gold if not (g[0] == "PERSON" and g[1] in labels)]
    t0 = time.perf_counter()
    _new, reps = redact(t, extra_names=EXTRA_NAMES, nlp=nlp)
    dt = time.perf_counter() - t0
    res = score(reps, gold)
    res["person_mentions"] = score(reps, mention_gold)["recall"].get("PERSON")
    res["seconds"] = dt
    return res


BLIND = ROOT / "bench" / "data" / "redact_blind"
# Eponyms the blind set's README calls debatable decoys (names of things that are people's names).
DEBATABLE = ("Goldacre Review", "Caldicott Guardian", "Alan Turing Institute",
             "Ada Lovelace Institute", "IV27")


def score_blind(nlp, folder=BLIND):
    """Per-kind recall and decoy precision of ``redact`` on the blind set; see the docstring."""
    import csv

    from qual.readers import read_metadata, read_transcript
    from qual.redact import redact

    folder = Path(folder)
    meta = read_metadata(folder)
    rows = list(csv.DictReader((folder / "key.csv").open(encoding="utf-8")))
    per: dict[str, list[int]] = {}
    missed, decoys_hit, refused, unkeyed = [], [], [], []
    t0 = time.perf_counter()
    for name in sorted({r["file"] for r in rows}):
        t = read_transcript(folder / name, metadata=meta.get(name))
        keyed = [r for r in rows if r["file"] == name]
        try:
            _new, reps = redact(t, nlp=nlp)
        except Exception as exc:  # a refused file name: every item in it counts as missed
            refused.append(f"{name}: {exc}")
            reps = []
        covered = bytearray(len(t.text))
        for r in reps:
            if r.field == "text":
                covered[r.start:r.end] = b"\x01" * (r.end - r.start)
        for r in keyed:
            s, e = int(r["start"]), int(r["end"])
            if t.text[s:e] != r["text"]:
                raise AssertionError(f"{name}: key row {r['text']!r} does not match the text")
            if r["must_redact"] == "0":
                if any(covered[s:e]):
                    decoys_hit.append(r["text"])
                continue
            core = re.split(r"\s*,?\s*\b(?:ext|extn|extension|x)\b", r["text"])[0] \
                if r["kind"] == "phone" else r["text"]
            hit = all(covered[s:s + len(core)])
            k = per.setdefault(r["kind"], [0, 0])
            k[0] += hit
            k[1] += 1
            if not hit:
                missed.append((r["kind"], r["text"]))
        personal = [(int(r["start"]), int(r["end"])) for r in keyed if r["must_redact"] == "1"]
        unkeyed += [r.original for r in reps if r.field == "text"
                    and not any(r.start < e and s < r.end for s, e in personal)]
    n_decoys = sum(1 for r in rows if r["must_redact"] == "0")
    found = sum(v[0] for v in per.values())
    total = sum(v[1] for v in per.values())
    return {"counts": per, "recall": {k: v[0] / v[1] for k, v in per.items()},
            "overall": found / max(1, total), "found": found, "total": total,
            "decoys": n_decoys, "decoys_hit": decoys_hit,
            "decoys_hit_firm": [d for d in decoys_hit if d not in DEBATABLE],
            "missed": missed, "refused": refused, "unkeyed": unkeyed,
            "seconds": time.perf_counter() - t0}


def print_blind(label, res):
    print(f"\n== blind set (bench/data/redact_blind), {label}  ({res['seconds']:.2f} s)")
    order = ["person_speaker", "person_selfintro", "person_titled", "person_passing",
             "person_part", "phone", "email", "nino", "nhs", "postcode"]
    for kind in order + sorted(set(res["counts"]) - set(order)):
        if kind in res["counts"]:
            found, total = res["counts"][kind]
            print(f"  {kind:<17} recall {found:>3}/{total:<3} = {found / total:.3f}")
    print(f"  all personal items  recall {res['found']}/{res['total']} = {res['overall']:.3f}")
    hit, firm = len(res["decoys_hit"]), len(res["decoys_hit_firm"])
    print(f"  decoys redacted: {hit} of {res['decoys']} (precision on decoys "
          f"{1 - hit / res['decoys']:.3f}); leaving out the debatable eponyms: {firm}")
    print(f"  replacements on no keyed item: {len(res['unkeyed'])}")
    for line in res["refused"]:
        print("  REFUSED:", line)
    if res["missed"]:
        print("  missed:", "; ".join(f"{k} {v!r}" for k, v in res["missed"]))
    if res["decoys_hit"]:
        print("  decoys redacted:", "; ".join(repr(d) for d in res["decoys_hit"]))
    if res["unkeyed"]:
        print("  on no keyed item:", "; ".join(repr(u) for u in res["unkeyed"]))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    from qual.redact import load_ner

    configs = [("rules only (no NER)", False)]
    if "--no-ner" not in argv:
        nlp = load_ner()
        if nlp is not None:
            configs.append((f"rules + spaCy NER ({nlp.meta.get('name')} "
                            f"{nlp.meta.get('version')})", nlp))
        else:
            print("(no trained spaCy pipeline installed: NER run skipped)")
    with tempfile.TemporaryDirectory() as tmp:
        for label, nlp in configs:
            res = run(nlp, tmp)
            print(f"\n== {label}  ({res['seconds']:.2f} s)")
            for kind in ("PERSON", "EMAIL", "PHONE", "NINO", "NHS", "POSTCODE"):
                found, total = res["counts"].get(kind, (0, 0))
                print(f"  {kind:<9} recall {found:>3}/{total:<3} = {res['recall'].get(kind, 0):.3f}")
            print(f"  PERSON mentions in speech (not speaker labels): recall "
                  f"{res['person_mentions']:.3f}")
            print(f"  precision {res['precision']:.3f}  "
                  f"({len(res['false_positives'])} replacements not on a planted item)")
            if res["missed"]:
                print("  missed:", "; ".join(f"{k} {v!r}" for k, v in res["missed"]))
            if res["false_positives"]:
                print("  false positives:", "; ".join(f"{r.kind} {r.original!r}"
                                                     for r in res["false_positives"]))
            if res["lookalikes_hit"]:
                print("  look-alikes redacted:", res["lookalikes_hit"])
        if (BLIND / "key.csv").exists():
            for label, nlp in configs:
                print_blind(label, score_blind(nlp))


if __name__ == "__main__":
    main()
