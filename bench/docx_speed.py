"""How long a long Word transcript takes to read, against the same text as plain text.

    python bench/docx_speed.py [--paragraphs 16000] [--repeat 3]

Generates an interview of N paragraphs (a bold "Name:" label and the utterance in each, as
Word transcripts are usually typed) as .docx, and the same conversation as .txt, reads both
with ``qual.readers.read_transcript`` (best of --repeat) and prints the two times and their
ratio, then the same for ``python -m qual ingest`` of each file into a new store. It also checks that both give the same text and turns, and that the reader's paragraph
text is python-docx's ``Paragraph.text``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SPEAKERS = ("Interviewer", "Sam Okafor")
TOPICS = ("the data sharing agreement", "the legal gateway", "the linkage of the two datasets",
          "public trust in the service", "the skills of the analysts", "the approval panel")


def conversation(n: int) -> list[tuple[str, str]]:
    out = []
    for i in range(n):
        speaker = SPEAKERS[i % 2]
        topic = TOPICS[(i // 2) % len(TOPICS)]
        if speaker == "Interviewer":
            text = f"What happened with {topic} in case {i}?"
        else:
            text = (f"We waited a long time on {topic}, about {i % 17 + 2} months. "
                    "Nobody owned the decision, so it went round again.")
        out.append((speaker, text))
    return out


def write_files(n: int, folder: Path) -> tuple[Path, Path]:
    import docx

    turns = conversation(n)
    d = docx.Document()
    for speaker, text in turns:
        p = d.add_paragraph()
        p.add_run(f"{speaker}:").bold = True
        p.add_run(f" {text}")
    docx_path, txt_path = folder / f"interview_{n}.docx", folder / f"interview_{n}.txt"
    d.save(docx_path)
    txt_path.write_text("\n\n".join(f"{s}: {t}" for s, t in turns) + "\n", encoding="utf-8")
    return docx_path, txt_path


def best_time(path: Path, repeat: int):
    from qual.readers import read_transcript

    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = read_transcript(path)
        best = min(best, time.perf_counter() - t0)
    return best, result


def best_ingest(path: Path, repeat: int) -> float:
    """Best wall time of ``python -m qual ingest`` of the one file into a new store."""
    import subprocess

    best = float("inf")
    for k in range(repeat):
        folder = path.parent / f"ingest-{path.suffix[1:]}-{k}"
        folder.mkdir()
        (folder / path.name).write_bytes(path.read_bytes())
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "qual", "ingest", str(folder),
                        "--db", str(folder / "qual.db")], check=True, capture_output=True,
                       cwd=Path(__file__).resolve().parent.parent)
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paragraphs", type=int, default=16000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        docx_path, txt_path = write_files(args.paragraphs, Path(tmp))
        size = docx_path.stat().st_size
        t_txt, from_txt = best_time(txt_path, args.repeat)
        t_docx, from_docx = best_time(docx_path, args.repeat)
        same = (from_txt.text == from_docx.text
                and [(t.speaker, t.role, t.start, t.end) for t in from_txt.turns]
                == [(t.speaker, t.role, t.start, t.end) for t in from_docx.turns])

        import docx

        from qual.readers.docx import _DocxReader, _Styles

        document = docx.Document(str(docx_path))
        reader = _DocxReader(_Styles(None))
        same_text = all(reader.paragraph(p._p)[0] == p.text for p in document.paragraphs)
        i_txt, i_docx = best_ingest(txt_path, args.repeat), best_ingest(docx_path, args.repeat)
    print(f"{args.paragraphs} paragraphs, {len(from_txt.turns)} turns, {size:,} bytes as docx")
    print(f"txt:  {t_txt:7.2f} s")
    print(f"docx: {t_docx:7.2f} s")
    print(f"ratio docx/txt: {t_docx / t_txt:.2f}")
    print(f"ingest (python -m qual ingest, a process each, with segmentation and the store): "
          f"txt {i_txt:.2f} s, docx {i_docx:.2f} s, ratio {i_docx / i_txt:.2f}")
    print(f"same text and turns: {same}; paragraph text as python-docx: {same_text}")
    return 0 if same and same_text else 1


if __name__ == "__main__":
    raise SystemExit(main())
