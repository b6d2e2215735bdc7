"""The qual review app: a thin Streamlit page over ``qual.review`` and ``qual.agreement``.

Start it with ``python -m qual review`` (or ``QUAL_DB=path/to/qual.db streamlit run app.py``).
The store path comes from the environment variable ``QUAL_DB`` (default ``./qual.db``).
Every decision is written to the store at once (an append-only log); nothing is kept only
in the browser, so closing the tab loses nothing.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

import pandas as pd
import streamlit as st

from qual import review as R
from qual import topicview as TV
from qual.errors import QualError
from qual.store import Store

DB = os.environ.get("QUAL_DB", "qual.db")
PAGES = ("Review queue", "Transcript", "Overview", "Topics", "Agreement")
ORDERS = {"least confident first": "confidence", "by theme": "theme",
          "by document (text order)": "document", "by speaker": "speaker"}

st.set_page_config(page_title="qual review", layout="wide")


# -- data (all logic is in qual/) ------------------------------------------------------------
def open_store() -> Store:
    if not Path(DB).exists():
        st.error(f"No store at {Path(DB).resolve()}. Run `python -m qual code transcripts/` "
                 "first, or set QUAL_DB to your store.")
        st.stop()
    try:
        return Store(DB)
    except QualError as e:
        st.error(str(e))
        st.stop()


@st.cache_resource(show_spinner=False)
def _codebook(path: str | None):
    from qual.codebook import load_codebook

    try:
        return load_codebook(path if path and Path(path).exists() else None)
    except QualError:
        return load_codebook()


@st.cache_resource(show_spinner=False, max_entries=2)
def _machine(db: str, version: tuple):
    store = Store(db)
    try:
        return R.machine_coding(store, scores=False)      # scores parsed where shown
    finally:
        store.close()


@st.cache_resource(show_spinner=False, max_entries=4)
def _coding(db: str, version: tuple, decisions: int, _store):
    return R.apply_decisions(_machine(db, version), _store.latest_decisions())


def coding(store) -> pd.DataFrame:
    """The effective coding. The machine part is read again only when a run or document was
    added; decisions are applied on top when one was added (fast: see bench/review_bench.py)."""
    runs = store.runs()
    version = (len(runs), int(runs["id"].max()) if len(runs) else 0, len(store.documents()))
    return _coding(str(Path(DB).resolve()), version, store.decision_count(), store)


def scores_of(value) -> dict:
    if isinstance(value, dict):
        return value
    return json.loads(value) if isinstance(value, str) and value else {}


def decide(segment_id: int, action: str, **kw):
    """Button callback: record one decision (runs before the page is drawn again)."""
    reviewer = st.session_state.get("reviewer", "").strip()
    store = Store(DB)
    try:
        R.apply_decision(store, segment_id, reviewer, action, codebook=CODEBOOK, **kw)
        st.session_state["flash"] = f"Saved: {action} on segment {segment_id}."
        st.session_state["last_segment"] = segment_id
    except (R.ReviewError, QualError) as e:
        st.session_state["flash_error"] = str(e)
    finally:
        store.close()


def save_correction(segment_id: int, shown_themes: list[str]):
    k = f"_{segment_id}"
    themes = st.session_state.get("themes" + k, [])
    removed = set(shown_themes) - set(themes)       # a removed theme takes its sub-codes along
    subcodes = [s for s in st.session_state.get("subcodes" + k, [])
                if CODEBOOK.theme_of(s) not in removed]
    decide(segment_id, "recode", themes=themes, subcodes=subcodes,
           polarity=st.session_state.get("polarity" + k, "neutral"),
           memo=st.session_state.get("memo" + k, ""))


def skip(segment_id: int):
    st.session_state.setdefault("skipped", []).append(segment_id)


# -- page ------------------------------------------------------------------------------------
store = open_store()
latest = store.latest_run("code")
CODEBOOK = _codebook(latest["codebook_path"] if latest else None)
COLORS = {t.id: t.color for t in CODEBOOK.themes}

with st.sidebar:
    st.title("qual review")
    st.text_input("Your name (recorded on every decision)", key="reviewer")
    page = st.radio("Page", PAGES, key="page")
    st.caption(f"Store: {Path(DB).resolve()}")

df = coding(store)
docs = store.documents()
reviewer = st.session_state.get("reviewer", "").strip()

if st.session_state.get("flash"):
    st.success(st.session_state.pop("flash"))
if st.session_state.get("flash_error"):
    st.error(st.session_state.pop("flash_error"))


def theme_badges(themes: str) -> str:
    out = []
    for t in (themes or "none").split(";"):
        c = COLORS.get(t, "#999999")
        out.append(f'<span style="background:{c};color:white;padding:1px 6px;border-radius:4px;'
                   f'margin-right:4px">{html.escape(t)}</span>')
    return "".join(out)


def page_review():
    st.header("Review queue")
    if not reviewer:
        st.info("Enter your name in the sidebar to start reviewing.")
    with st.expander("Filters and order", expanded=False):
        c1, c2, c3 = st.columns(3)
        f_themes = c1.multiselect("Theme", CODEBOOK.theme_ids + ["none"], key="f_themes")
        f_sub = c1.multiselect("Sub-code", CODEBOOK.subcode_ids, key="f_subcodes")
        f_pol = c2.multiselect("Polarity", ["barrier", "opportunity", "neutral"], key="f_polarity")
        f_conf = c2.slider("Confidence", 0.0, 1.0, (0.0, 1.0), 0.05, key="f_conf")
        names = dict(zip(docs["name"], docs["id"]))
        f_docs = c3.multiselect("Document", list(names), key="f_docs")
        f_status = c3.radio("Status", ["not reviewed", "reviewed", "all"], key="f_status",
                            horizontal=True)
        f_order = c3.selectbox("Order", list(ORDERS), key="f_order")
    reviewed = {"not reviewed": False, "reviewed": True, "all": None}[f_status]
    conf = (None if f_conf[0] <= 0 else f_conf[0], None if f_conf[1] >= 1 else f_conf[1])
    queue = R.review_queue(df, themes=f_themes, subcodes=f_sub, polarity=f_pol,
                           min_confidence=conf[0], max_confidence=conf[1],
                           document_ids=[names[n] for n in f_docs], reviewed=reviewed,
                           order=ORDERS[f_order])
    skipped = st.session_state.get("skipped", [])
    left = queue[~queue["segment_id"].isin(skipped)]
    done = int(df["reviewed"].sum())
    st.caption(f"{len(left)} left in this queue ({len(queue) - len(left)} skipped) · "
               f"{done} of {len(df)} segments reviewed")
    if st.session_state.get("last_segment") and reviewer:
        st.button("Undo my last decision", key="undo",
                  on_click=decide, args=(st.session_state["last_segment"], "undo"), shortcut="U")
    if not len(left):
        st.success("Nothing left in this queue.")
        if skipped:
            st.button("Bring back skipped segments", key="unskip",
                      on_click=lambda: st.session_state.pop("skipped", None))
        return
    row = left.iloc[0]
    sid = int(row["segment_id"])
    k = f"_{sid}"
    st.subheader(f"{row['document']} · {row['speaker']} ({row['role']}) · segment {sid}")
    if isinstance(row.get("context"), str) and row["context"].strip():
        st.markdown("**Interviewer asked:**")
        st.markdown(f"> {html.escape(row['context'].strip())}")
    st.markdown("**Segment:**")
    st.markdown(f"<div style='font-size:1.1em;border-left:4px solid "
                f"{COLORS.get(str(row['themes']).split(';')[0], '#999')};padding-left:8px'>"
                f"{html.escape(row['text'])}</div>", unsafe_allow_html=True)
    if row.get("stale"):
        st.warning("The segment's text changed since the last decision on it.")
    c1, c2 = st.columns(2)
    with c1:
        conf_txt = f"{row['confidence']:.2f}" if pd.notna(row["confidence"]) else "—"
        st.markdown(f"**Machine:** {theme_badges(row['machine_themes'])} "
                    f"{html.escape(str(row['machine_subcodes'] or ''))} · "
                    f"{row['machine_polarity']} · confidence {conf_txt}", unsafe_allow_html=True)
        st.markdown(f"**Now:** {theme_badges(row['themes'])} ({row['source']}"
                    f"{', ' + str(row['reviewer']) if row['reviewer'] else ''})",
                    unsafe_allow_html=True)
        if scores_of(row["scores"]):
            scores = pd.Series(scores_of(row["scores"])).sort_values(ascending=False).head(8)
            st.dataframe(scores.rename("score").to_frame(), width="stretch")
    with c2:
        disabled = not reviewer
        b1, b2, b3 = st.columns(3)
        b1.button("Accept", key="accept", type="primary", disabled=disabled,
                  on_click=decide, args=(sid, "accept"), shortcut="A")
        b2.button("Reject (no theme)", key="reject", disabled=disabled,
                  on_click=decide, args=(sid, "reject"), shortcut="X")
        b3.button("Skip", key="skip", on_click=skip, args=(sid,), shortcut="S")
        current = R.coding_of(row)
        st.multiselect("Themes", CODEBOOK.theme_ids, default=current["themes"], key="themes" + k)
        st.multiselect("Sub-codes", CODEBOOK.subcode_ids,
                       default=[s for s in current["subcodes"] if s in CODEBOOK.subcode_ids],
                       key="subcodes" + k)
        pols = ["barrier", "opportunity", "neutral"]
        st.radio("Polarity", pols, index=pols.index(current["polarity"]), horizontal=True,
                 key="polarity" + k)
        st.text_area("Memo (why)", key="memo" + k, height=68)
        st.button("Save correction", key="save", disabled=disabled,
                  on_click=save_correction, args=(sid, current["themes"]), shortcut="Ctrl+Enter")
        st.caption("Keys: A accept · X reject · S skip · U undo · Ctrl+Enter save")


def page_transcript():
    st.header("Transcript")
    if not len(docs):
        st.info("No documents in the store yet.")
        return
    labels = [f"{n}{' (redacted)' if r else ''}" for n, r in zip(docs["name"], docs["redacted"])]
    choice = st.selectbox("Document", range(len(docs)), format_func=lambda i: labels[i],
                          key="t_doc")
    doc = store.document(int(docs.iloc[choice]["id"]))
    st.caption(("Redacted: names and identifiers were pseudonymised before storing. "
                if doc["redacted"] else "Not redacted. ")
               + " · ".join(f"{k}: {v}" for k, v in doc["metadata"].items()))
    st.markdown("Legend: " + theme_badges(";".join(CODEBOOK.theme_ids)), unsafe_allow_html=True)
    text = doc["text"]
    segs = df[df["document_id"] == doc["id"]].sort_values("start")
    turns = store.turns(doc["id"])
    parts = []
    for t in turns.itertuples(index=False):
        inner, pos = [], t.start
        for s in segs[(segs["start"] >= t.start) & (segs["end"] <= t.end)].itertuples(index=False):
            inner.append(html.escape(text[pos:s.start]))
            themes = s.themes if isinstance(s.themes, str) else "none"
            first = themes.split(";")[0]
            colour = COLORS.get(first)
            tip = f"{themes} | {s.subcodes or ''} | {s.polarity} | {s.source}"
            if scores_of(s.scores):
                top = sorted(scores_of(s.scores).items(), key=lambda kv: -kv[1])[:5]
                tip += " | " + ", ".join(f"{k} {v:.2f}" for k, v in top)
            style = (f"background:{colour}33;border-bottom:2px solid {colour}" if colour
                     else "background:#eeeeee")
            inner.append(f'<span title="{html.escape(tip)}" style="{style}">'
                         f"{html.escape(text[s.start:s.end])}</span>")
            pos = s.end
        inner.append(html.escape(text[pos:t.end]))
        muted = "color:#666;" if t.role == "interviewer" else ""
        parts.append(f'<p style="{muted}"><b>{html.escape(t.speaker)}</b> '
                     f'<small>({html.escape(t.role)})</small><br>{"".join(inner)}</p>')
    st.markdown("\n".join(parts), unsafe_allow_html=True)


def page_overview():
    st.header("Overview")
    ov = R.theme_overview(df, docs, CODEBOOK.theme_ids)
    c1, c2, c3 = st.columns(3)
    c1.metric("Segments", len(df))
    c2.metric("Reviewed", f"{df['reviewed'].mean():.0%}" if len(df) else "—")
    c3.metric("Documents", len(docs))
    st.dataframe(ov, width="stretch", hide_index=True)
    if len(ov):
        st.subheader("Barrier vs opportunity per theme")
        st.bar_chart(ov.set_index("theme")[["barrier", "opportunity", "neutral"]])
    topics_under_themes()
    st.subheader("Documents")
    st.dataframe(docs[["name", "format", "version", "redacted", "ingested_at"]]
                 .assign(redacted=docs["redacted"].astype(bool)), width="stretch", hide_index=True)
    cols = ["segment_id", "document", "speaker", "start", "end", "text", "themes", "subcodes",
            "polarity", "confidence", "source", "reviewer", "memo"]
    st.download_button("Download the effective coding (CSV)", df[cols].to_csv(index=False),
                       file_name="coding.csv", mime="text/csv")


def topics_under_themes():
    st.subheader("Topics under each theme")
    by_theme = TV.topics_by_theme(store, theme_ids=CODEBOOK.theme_ids)
    if not by_theme:
        st.info(TV.HINT)
        return
    for theme, t in by_theme.items():
        words = "; ".join(f"{r.topic}: {', '.join((r.keywords or '').split(', ')[:3])}"
                          f"{' (EMERGENT)' if r.emergent else ''}" for r in t.itertuples())
        st.markdown(f"{theme_badges(theme)} {len(t)} topic{'s' * (len(t) != 1)}, "
                    f"{int(t['size'].sum())} segments · {html.escape(words)}",
                    unsafe_allow_html=True)
        st.dataframe(t.assign(emergent=t["emergent"].map({True: "EMERGENT", False: ""})),
                     width="stretch", hide_index=True)


def page_topics():
    st.header("Topics")
    run = TV.latest_topics_run(store)
    table = TV.topics_table(store)
    if run is None or table.empty:
        st.info(TV.HINT)
        return
    real = table[table["topic"] != -1]
    st.caption(f"Topics run {run['id']} ({run.get('finished_at') or run.get('started_at')}) · "
               f"{len(real)} topics · {int(table['size'].sum())} segments · "
               f"{int(real['emergent'].sum())} emergent (no sub-code close: candidate new codes). "
               "Run `python -m qual topics` again to refit.")
    shown = table.assign(
        emergent=table["emergent"].map({True: "EMERGENT", False: ""}),
        similarity=table["similarity"].round(3),
        theme=table["theme"].where(table["topic"] != -1, "(outliers)"))
    st.dataframe(shown[["topic", "size", "keywords", "theme", "subcode", "similarity",
                        "emergent"]], width="stretch", hide_index=True)
    sizes = TV.theme_topic_sizes(store)
    if len(sizes):
        st.subheader("Topic sizes by theme")
        st.bar_chart(sizes, x="topic", y="size", color="theme", horizontal=True)
    st.subheader("Example quotes")
    for r in table.itertuples(index=False):
        where = ("outliers" if r.topic == -1 else
                 f"{r.subcode}{' · EMERGENT' if r.emergent else ''} · sim {r.similarity:.2f}")
        with st.expander(f"Topic {r.topic} ({r.size}) · {r.keywords} — {where}"):
            for ex in r.examples:
                st.markdown(f"> {html.escape(ex)}")


def page_agreement():
    from qual.agreement import agreement

    st.header("Agreement")
    res = agreement(store, CODEBOOK.theme_ids)
    if not len(res["pairs"]):
        st.info("No reviewer decisions yet: agreement needs the machine and at least one reviewer.")
        return
    st.caption("Machine vs each reviewer, and reviewer vs reviewer, on the segments both coded. "
               "Cohen's κ per theme (presence/absence); Krippendorff's α on the theme sets. "
               "A reviewer's accept counts as agreeing with what they were shown.")
    st.dataframe(res["pairs"].round(3), width="stretch", hide_index=True)
    dis = res["disagreements"]
    st.subheader(f"Disagreements to resolve ({len(dis)})")
    if len(dis):
        text = df.set_index("segment_id")["text"]
        st.dataframe(dis.assign(text=dis["segment_id"].map(text)), width="stretch",
                     hide_index=True)


try:
    {"Review queue": page_review, "Transcript": page_transcript, "Overview": page_overview,
     "Topics": page_topics, "Agreement": page_agreement}[page]()
finally:
    store.close()
