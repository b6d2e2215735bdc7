"""The qual review app: a thin Streamlit page over ``qual.review`` and ``qual.agreement``.

Start it with ``python -m qual review`` (or ``QUAL_DB=path/to/qual.db streamlit run app.py``).
The store path comes from the environment variable ``QUAL_DB`` (default ``./qual.db``).
Every decision is written to the store at once (an append-only log); nothing is kept only
in the browser, so closing the tab loses nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path

import pandas as pd
import streamlit as st

from qual import access as A
from qual import review as R
from qual import topicview as TV
from qual.errors import QualError
from qual.export import inert_table
from qual.store import Store

DB = os.environ.get("QUAL_DB", "qual.db")
PAGES = ("Review queue", "Transcript", "Overview", "Topics", "Agreement", "Downloads")
ORDERS = {"least confident first": "confidence", "by theme": "theme",
          "by stakeholder group": "group", "by document (text order)": "document",
          "by speaker": "speaker", "random sample (for blind coding)": "random"}
ORDER_DEFAULT, ORDER_BLIND = "least confident first", "random sample (for blind coding)"
WIDGETS = ("themes_", "subcodes_", "polarity_", "memo_")

st.set_page_config(page_title="qual review", layout="wide")


# -- who is reviewing ---------------------------------------------------------------------------
def login_gate() -> str | None:
    """Beyond this machine the app asks for a reviewer name and password (hashes in the file
    that `python -m qual review` passes in QUAL_ACCESS); the signed-in name is then the
    reviewer on every decision. On 127.0.0.1 it asks for nothing."""
    A.protect_app()                     # a foreign Host/Origin (DNS rebinding) sees nothing
    path = A.access_path_from_env()
    address = str(st.get_option("server.address") or "")
    if path is None:
        if not A.is_loopback(address):   # no address set means all interfaces
            st.error(f"This app listens on {address or 'all interfaces'}, beyond this machine, "
                     "without reviewer passwords, so it shows nothing. Add a reviewer with "
                     "`python -m qual reviewers add NAME`, then start it with `python -m qual "
                     f"review --address {address or '0.0.0.0'}`.")
            st.stop()
        return None
    if A.still_reviewer(path, st.session_state.get("signed_in")):   # removed: session ends
        return st.session_state["signed_in"]
    st.title("qual review: sign in")
    with st.form("login_form"):
        name = st.text_input("Reviewer name", key="login_name")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Sign in")
    if submitted:
        try:
            ok = A.check_login(path, name, password)
        except QualError as e:
            st.error(str(e))
            st.stop()
        if ok:
            st.session_state["signed_in"] = name.strip()
            st.session_state["reviewer"] = name.strip()
            st.rerun()
        st.error("Wrong name or password.")
    st.stop()


LOGIN = login_gate()


# -- data (all logic is in qual/) ------------------------------------------------------------
def open_store() -> Store:
    if not Path(DB).exists():
        st.error(f"No store at {Path(DB).resolve()}. Run `python -m qual code transcripts/` "
                 "first, or set QUAL_DB to your store.")
        st.stop()
    try:
        # a damaged store: one short message, no traceback. Every page is read once per
        # session (a quick_check reads the whole file: after each decision it would cost a
        # reading of the corpus); damage met later is a StoreDamaged, shown the same way
        store = Store(DB, check=not st.session_state.get("store_checked"))
    except QualError as e:
        st.error(str(e))
        st.stop()
    st.session_state["store_checked"] = True
    return store


@st.cache_resource(show_spinner=False)
def _codebook(path: str | None):
    from qual.codebook import load_codebook

    try:
        return load_codebook(path if path and Path(path).exists() else None)
    except QualError:
        return load_codebook()


def coding(store) -> pd.DataFrame:
    """The effective coding, one for every session of this store (R.CodingCache): read
    again when documents, runs or segments (a split or merge) changed; after decisions only
    their segments' rows are brought up to date, so a decision costs the same at any corpus
    size (see bench/review_bench.py)."""
    return R.shared_coding_cache(DB).coding(store)


def md(text) -> str:
    """Data shown as plain text in Markdown (names, questions, memos, metadata, labels)."""
    return R.safe_markup(text)


def in_html(text) -> str:
    """Data shown as plain text inside raw HTML (line breaks as <br>)."""
    return R.safe_markup(text, newlines="<br>")


def quote(text) -> str:
    """Data as a Markdown block quote of plain text."""
    return "\n".join("> " + line for line in md(str(text).strip()).split("\n"))


def scores_of(value) -> dict:
    if isinstance(value, dict):
        return value
    return json.loads(value) if isinstance(value, str) and value else {}


@contextlib.contextmanager
def writing():
    """A button callback's write: its own store connection, and a refused write shown as an
    error at the top of the next page instead of a traceback."""
    store = Store(DB)
    try:
        yield A.for_session(store, A.access_path_from_env(), st.session_state.get("signed_in"))
    except (R.ReviewError, QualError) as e:
        st.session_state["flash_error"] = str(e)       # shown as plain text (see md)
    finally:
        store.close()


def decide(segment_id: int, action: str, **kw):
    """Button callback: record one decision (runs before the page is drawn again)."""
    reviewer = st.session_state.get("reviewer", "").strip()
    with writing() as store:
        if action == "undo" and st.session_state.get("last_change") == "boundary":
            back = R.take_back_boundary_change(store, segment_id, reviewer)
            st.session_state["flash"] = (f"Took back the split/merge: {R.ids_phrase(back)} "
                                         f"{'is' if len(back) == 1 else 'are'} back.")
            st.session_state.pop("last_segment", None)
            return
        R.apply_decision(store, segment_id, reviewer, action, codebook=CODEBOOK, **kw)
        st.session_state["flash"] = f"Saved: {action} on segment {segment_id}."
        st.session_state["last_segment"] = segment_id
        st.session_state["last_change"] = "decision"


def save_correction(segment_id: int, shown: dict, blind: bool):
    """Button callback: what the form holds against what the card showed (R.correction):
    a memo alone keeps the coding, and a form that does not belong to this card is refused."""
    k = f"_{segment_id}"
    if st.session_state.get("form_for") != form_marker(segment_id, shown, blind):
        st.session_state["flash_error"] = ("The form did not match the segment shown; it has "
                                           "been reset. Check it and save again.")
        return
    chosen = {"themes": st.session_state.get("themes" + k, []),
              "subcodes": st.session_state.get("subcodes" + k, []),
              "polarity": st.session_state.get("polarity" + k, "neutral")}
    try:
        action, kw = R.correction(shown, chosen, memo=st.session_state.get("memo" + k, ""),
                                  blind=blind, codebook=CODEBOOK)
    except R.ReviewError as e:
        st.session_state["flash_error"] = str(e)
        return
    decide(segment_id, action, **kw)


def form_marker(segment_id: int, shown: dict, blind: bool) -> tuple:
    """Which card the correction form was filled for: the segment, blind or not, and the
    coding shown. When it changes, the form is set to the coding the card shows."""
    return (int(segment_id), bool(blind), tuple(shown["themes"]), tuple(shown["subcodes"]),
            shown["polarity"])


def blind_changed():
    """Blind coding hides the machine's coding and samples the queue at random, so the blind
    decisions measure agreement fairly; switched off, the order chosen before comes back.
    The correction form follows the card (see form_marker)."""
    for key in [k for k in st.session_state if str(k).startswith(WIDGETS)]:
        del st.session_state[key]
    st.session_state.pop("form_for", None)
    if st.session_state.get("blind"):
        st.session_state["order_before_blind"] = st.session_state.get("f_order", ORDER_DEFAULT)
        st.session_state["f_order"] = ORDER_BLIND
    else:
        st.session_state["f_order"] = st.session_state.pop("order_before_blind", ORDER_DEFAULT)


def change_boundaries(kind: str, segment_id: int, other: int | None = None):
    """Button callback: split a segment at the chosen cut, or merge it with a neighbour."""
    reviewer = st.session_state.get("reviewer", "").strip()
    memo = st.session_state.get(f"memo_{segment_id}", "")
    with writing() as store:
        if kind == "split":
            made = R.split_segment(store, segment_id, st.session_state[f"cut_{segment_id}"],
                                   reviewer, memo=memo)
            st.session_state["flash"] = (f"Split segment {segment_id} into {made[0]} and "
                                         f"{made[1]}; both are in the queue.")
            st.session_state.pop(f"cut_{segment_id}", None)
            new = made[0]
        else:
            new = R.merge_segments(store, [segment_id, other], reviewer, memo=memo)
            st.session_state["flash"] = f"Merged segments {segment_id} and {other} into {new}."
        st.session_state["last_segment"] = new
        st.session_state["last_change"] = "boundary"


def add_document_memo(document_id: int):
    key = f"doc_memo_{document_id}"
    with writing() as store:
        R.add_memo(store, st.session_state.get("reviewer", "").strip(),
                   st.session_state.get(key, ""), document_id=document_id)
        st.session_state["flash"] = "Memo saved."
        st.session_state[key] = ""


def skip(segment_id: int):
    st.session_state.setdefault("skipped", []).append(segment_id)


def show_in_transcript(doc_index: int, segment_id: int):
    """Button callback: open the Transcript page at this segment (anchor ``seg-ID``)."""
    st.session_state["t_doc"] = int(doc_index)
    st.session_state["t_focus"] = int(segment_id)
    st.session_state["page"] = "Transcript"


def remember_reviewer():
    """Keep the reviewer's name in the address (?reviewer=...), so a reload keeps it."""
    name = st.session_state.get("reviewer", "").strip()
    if name:
        st.query_params["reviewer"] = name
    else:
        st.query_params.pop("reviewer", None)


# -- page ------------------------------------------------------------------------------------
store = open_store()
latest = store.latest_run("code")
CODEBOOK = _codebook(latest["codebook_path"] if latest else None)
COLORS = {t.id: t.color for t in CODEBOOK.themes
          if re.fullmatch(r"#[0-9a-fA-F]{3,8}", t.color or "")}   # only colours go into a style

# Streamlit forgets a widget's value on a run that does not draw it: keep the queue's filters,
# blind coding and the transcript's choices while another page is shown
for _key in [k for k in st.session_state if str(k).startswith(("f_", "t_", "blind"))]:
    st.session_state[_key] = st.session_state[_key]

with st.sidebar:
    st.title("qual review")
    if LOGIN:
        st.session_state["reviewer"] = LOGIN
        st.markdown(f"Signed in as **{md(LOGIN)}**")
        st.button("Sign out", key="sign_out",
                  on_click=lambda: [st.session_state.pop(k, None)
                                    for k in ("signed_in", "reviewer")])
    else:
        if "reviewer" not in st.session_state:          # a reload keeps the name (see remember_reviewer)
            st.session_state["reviewer"] = str(st.query_params.get("reviewer", ""))[:200]
        st.text_input("Your name (recorded on every decision)", key="reviewer",
                      on_change=remember_reviewer)
    page = st.radio("Page", PAGES, key="page")
    st.caption(f"Store: {md(Path(DB).resolve())}")

try:
    df = coding(store)
except QualError as e:                  # e.g. damage met after the session's first check
    store.close()
    st.error(str(e))
    st.stop()
docs = store.documents()
reviewer = st.session_state.get("reviewer", "").strip()

if st.session_state.get("flash"):
    st.success(st.session_state.pop("flash"))           # the app's own words and ids
if st.session_state.get("flash_error"):
    st.error(md(st.session_state.pop("flash_error")))


def theme_badges(themes: str) -> str:
    out = []
    for t in (themes or "none").split(";"):
        c = COLORS.get(t, "#999999")
        out.append(f'<span style="background:{c};color:white;padding:1px 6px;border-radius:4px;'
                   f'margin-right:4px">{in_html(t)}</span>')
    return "".join(out)


def page_review():
    st.header("Review queue")
    if not reviewer:
        st.info("Enter your name in the sidebar to start reviewing.")
    blind = st.toggle("Blind coding: hide the machine's coding", key="blind",
                      on_change=blind_changed,
                      help="Code without seeing the machine's suggestion. Blind decisions "
                           "give an honest machine-vs-reviewer agreement (Agreement page).")
    with st.expander("Filters and order", expanded=False):
        c1, c2, c3 = st.columns(3)
        f_themes = c1.multiselect("Theme", CODEBOOK.theme_ids + ["none"], key="f_themes")
        f_sub = c1.multiselect("Sub-code", CODEBOOK.subcode_ids, key="f_subcodes")
        f_pol = c2.multiselect("Polarity", ["barrier", "opportunity", "neutral"], key="f_polarity")
        f_conf = c2.slider("Confidence", 0.0, 1.0, (0.0, 1.0), 0.05, key="f_conf")
        names = dict(zip(docs["name"], docs["id"]))
        f_docs = c3.multiselect("Document", list(names), key="f_docs")
        fields = R.group_fields(docs)
        f_field = c1.selectbox("Stakeholder group from", fields or ["(no metadata)"],
                               key="f_group_field")
        grouped = R.with_groups(df, docs, f_field if fields else None)
        f_groups = c2.multiselect("Stakeholder group", sorted(grouped["group"].unique()),
                                  key="f_groups")
        f_status = c3.radio("Status", ["not reviewed", "reviewed", "all"], key="f_status",
                            horizontal=True)
        f_order = c3.selectbox("Order", list(ORDERS), key="f_order")
        f_auto = c3.checkbox("Include auto-accepted segments", key="f_auto",
                             help="Segments the machine was sure of (code --auto-accept-above) "
                                  "are left out of the queue unless this is ticked.")
    reviewed = {"not reviewed": False, "reviewed": True, "all": None}[f_status]
    conf = (None if f_conf[0] <= 0 else f_conf[0], None if f_conf[1] >= 1 else f_conf[1])
    queue = R.review_queue(grouped, themes=f_themes, subcodes=f_sub, polarity=f_pol,
                           min_confidence=conf[0], max_confidence=conf[1],
                           document_ids=[names[n] for n in f_docs], groups=f_groups,
                           reviewed=reviewed, order=ORDERS[f_order], auto_accepted=f_auto)
    skipped = st.session_state.get("skipped", [])
    left = queue[~queue["segment_id"].isin(skipped)]
    done = int(df["reviewed"].sum())
    auto = int(df["auto_accepted"].sum()) if "auto_accepted" in df else 0
    st.caption(f"{len(left)} left in this queue ({len(queue) - len(left)} skipped) · "
               f"{done} of {len(df)} segments reviewed"
               + (f" · {auto} auto-accepted by the machine" if auto else ""))
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
    st.subheader(f"{md(row['document'])} · {md(row['speaker'])} ({md(row['role'])}) · "
                 f"segment {sid}")
    if row.get("group") and row["group"] != "(not given)":
        st.caption(f"Stakeholder group: {md(row['group'])}")
    if isinstance(row.get("context"), str) and row["context"].strip():
        st.markdown("**Interviewer asked:**")
        st.markdown(quote(row["context"]))
    st.markdown("**Segment:**")
    edge = "#999" if blind else COLORS.get(str(row["themes"]).split(";")[0], "#999")
    st.markdown(f"<div style='font-size:1.1em;border-left:4px solid {edge};padding-left:8px'>"
                f"{in_html(row['text'])}</div>", unsafe_allow_html=True)
    ids = docs["id"].astype(int).tolist()
    if int(row["document_id"]) in ids:
        st.button("Show in the transcript", key="to_transcript" + k, on_click=show_in_transcript,
                  args=(ids.index(int(row["document_id"])), sid),
                  help="Open the Transcript page at this segment, with what was said around it.")
    if row.get("stale"):
        st.warning("The decision shown was made on other text (the transcript changed, or a "
                   "reviewer split or merged segments): check it and decide again.")
    if row.get("origin") in ("split", "merge") and pd.notna(row.get("carried_from")):
        st.caption(f"Made by a reviewer's {row['origin']}: it shows the machine coding of "
                   f"segment {int(row['carried_from'])} until `python -m qual code` runs again.")
    c1, c2 = st.columns(2)
    if blind:
        c1.info("Blind coding: the machine's coding is hidden. Choose the themes you see "
                "(none for no theme) and save; “Reject” codes it as no theme.")
    if not blind:
        with c1:
            conf_txt = f"{row['confidence']:.2f}" if pd.notna(row["confidence"]) else "—"
            st.markdown(f"**Machine:** {theme_badges(row['machine_themes'])} "
                        f"{md(row['machine_subcodes'] or '')} · "
                        f"{md(row['machine_polarity'])} · confidence {conf_txt}",
                        unsafe_allow_html=True)
            who = f", {md(row['reviewer'])}" if isinstance(row["reviewer"], str) else ""
            st.markdown(f"**Now:** {theme_badges(row['themes'])} ({md(row['source'])}{who})",
                        unsafe_allow_html=True)
            line = R.score_summary(scores_of(row["scores"]))
            if line:
                st.caption(f"Top scores: {md(line)}")
    with c2:
        disabled = not reviewer
        b1, b2, b3 = st.columns([1, 1.6, 0.9])       # room for "Reject (no theme)"
        if not blind:
            b1.button("Accept", key="accept", type="primary", disabled=disabled,
                      on_click=decide, args=(sid, "accept"), shortcut="A")
        b2.button("Reject (no theme)", key="reject", disabled=disabled,
                  on_click=decide, args=(sid, "reject"), kwargs={"blind": blind}, shortcut="X")
        b3.button("Skip", key="skip", on_click=skip, args=(sid,), shortcut="S")
        correction_form(row, blind, disabled)
        boundaries(row, disabled)


def correction_form(row, blind: bool, disabled: bool):
    """Themes, sub-codes (of the chosen themes only), polarity and memo. The form starts from
    the coding the card shows (nothing, when blind) every time the card changes."""
    sid = int(row["segment_id"])
    k = f"_{sid}"
    shown = (R.coding_of(row) if not blind else
             {"themes": [], "subcodes": [], "polarity": "neutral"})
    marker = form_marker(sid, shown, blind)
    if st.session_state.get("form_for") != marker or any(
            key + k not in st.session_state for key in ("themes", "subcodes", "polarity")):
        # another card, or Streamlit dropped the form's state while another page was shown
        st.session_state["themes" + k] = [t for t in shown["themes"] if t in CODEBOOK.theme_ids]
        st.session_state["subcodes" + k] = [s for s in shown["subcodes"]
                                            if s in CODEBOOK.subcode_ids]
        st.session_state["polarity" + k] = shown["polarity"]
        st.session_state["form_for"] = marker
    themes = st.multiselect("Themes", CODEBOOK.theme_ids, key="themes" + k)
    offered = [s for s in CODEBOOK.subcode_ids if CODEBOOK.theme_of(s) in themes]
    kept = [s for s in st.session_state.get("subcodes" + k, []) if s in offered]
    if kept != st.session_state.get("subcodes" + k):
        st.session_state["subcodes" + k] = kept        # a removed theme takes its sub-codes
    st.multiselect("Sub-codes", offered, key="subcodes" + k,
                   placeholder="Sub-codes of the chosen themes" if offered else
                   "Choose a theme first")
    st.radio("Polarity", list(R.POLARITIES), horizontal=True, key="polarity" + k)
    st.text_area("Memo (why)", key="memo" + k, height=68)
    st.button("Save correction", key="save", disabled=disabled,
              on_click=save_correction, args=(sid, shown, blind), shortcut="Ctrl+Enter")
    st.caption("Keys: A accept · X reject · S skip · U undo · Ctrl+Enter save. "
               "A memo with the coding unchanged keeps the coding.")


def boundaries(row, disabled: bool):
    """Split the segment at a sentence or clause break, or merge it with a neighbour."""
    sid = int(row["segment_id"])
    k = f"_{sid}"
    with st.expander("Segment boundaries: split or merge"):
        text = row["text"]
        cuts = R.split_points(text)
        if cuts:
            if st.session_state.get("cut" + k) not in cuts:    # the break nearest the middle
                st.session_state["cut" + k] = R.default_cut(text, cuts)
            st.selectbox("Cut after", cuts, key="cut" + k,
                         format_func=lambda c: f"…{text[max(0, c - 40):c].strip()} ‖ "
                                               f"{text[c:c + 30].strip()}…")
            st.button("Split here", key="split" + k, disabled=disabled,
                      on_click=change_boundaries, args=("split", sid))
        else:
            st.caption(f"No sentence or clause break to cut at that leaves at least "
                       f"{R.MIN_SPLIT_WORDS} words on each side.")
        before, after = R.neighbours(store, sid)
        m1, m2 = st.columns(2)
        if before is not None:
            m1.button("Merge with the previous segment", key="merge_prev" + k,
                      disabled=disabled, on_click=change_boundaries,
                      args=("merge", sid, before))
        if after is not None:
            m2.button("Merge with the next segment", key="merge_next" + k, disabled=disabled,
                      on_click=change_boundaries, args=("merge", sid, after))
        st.caption("The old segments and their decisions stay in the log; "
                   "“Undo my last decision” takes a split or merge back.")


def page_transcript():
    st.header("Transcript")
    if not len(docs):
        st.info("No documents in the store yet.")
        return
    labels = [f"{n}{' (redacted)' if r else ''}" for n, r in zip(docs["name"], docs["redacted"])]
    if st.session_state.get("t_doc", 0) not in range(len(docs)):
        st.session_state["t_doc"] = 0
    choice = st.selectbox("Document", range(len(docs)), format_func=lambda i: labels[i],
                          key="t_doc")
    doc = store.document(int(docs.iloc[choice]["id"]))
    st.caption(md(("Redacted: names and identifiers were pseudonymised before storing. "
                   if doc["redacted"] else "Not redacted. ")
                  + " · ".join(f"{k}: {v}" for k, v in doc["metadata"].items())))
    blind = bool(st.session_state.get("blind"))
    text = doc["text"]
    segs = df[df["document_id"] == doc["id"]].sort_values("start")
    turns = store.turns(doc["id"])
    with st.expander("Filters", expanded=False):
        c1, c2, c3 = st.columns(3)
        speakers = c1.multiselect("Speaker", sorted(turns["speaker"].astype(str).unique()),
                                  key="t_speakers")
        t_themes = c2.multiselect("Theme", CODEBOOK.theme_ids + ["none"], key="t_themes",
                                  disabled=blind)
        t_pol = c2.multiselect("Polarity", list(R.POLARITIES), key="t_polarity",
                               disabled=blind)
        t_status = c3.radio("Reviewed", ["all", "reviewed", "not reviewed"], key="t_status",
                            horizontal=True)
        only = c3.checkbox("Only turns with a highlighted segment", key="t_only")
    if blind:
        t_themes, t_pol = [], []
        st.info("Blind coding is on: the coding is hidden here too. Segments are underlined "
                "only; switch blind coding off on the Review page to see the themes.")
    else:
        st.markdown("Legend: " + theme_badges(";".join(CODEBOOK.theme_ids)),
                    unsafe_allow_html=True)
    reviewed = {"all": None, "reviewed": True, "not reviewed": False}[t_status]
    shown = R.review_queue(segs, themes=t_themes, polarity=t_pol, reviewed=reviewed,
                           order="document") if len(segs) else segs
    marked = segs[segs["segment_id"].isin(shown["segment_id"])].set_index("segment_id")
    focus = st.session_state.get("t_focus")
    if focus in marked.index:
        st.markdown(f"[Jump to segment {int(focus)}](#seg-{int(focus)})")
    paragraphs = R.transcript_paragraphs(text, turns, marked.reset_index())
    if speakers:
        paragraphs = [p for p in paragraphs if str(p["speaker"]) in speakers]
    if only:
        hit = {p["turn"] for p in paragraphs if any(sid is not None for _, sid in p["pieces"])}
        paragraphs = [p for p in paragraphs if p["turn"] in hit]
    if not paragraphs:
        st.info("No turn matches these filters.")
    anchored: set = set()
    st.markdown("\n".join(transcript_html(p, marked, blind, focus, anchored) for p in paragraphs),
                unsafe_allow_html=True)
    if focus in marked.index:
        scroll_to(f"seg-{int(focus)}")
    document_memos(int(doc["id"]))


def transcript_html(p: dict, marked: pd.DataFrame, blind: bool, focus, anchored: set) -> str:
    """One paragraph as HTML on one line (no blank line can end the HTML block); all text
    goes through in_html, and each segment's first piece carries the anchor ``seg-ID``."""
    out = []
    for piece, sid in p["pieces"]:
        if sid is None:
            out.append(in_html(piece))
            continue
        s = marked.loc[sid]
        themes = s.themes if isinstance(s.themes, str) else "none"
        colour = COLORS.get(themes.split(";")[0])
        tip = f"segment {sid} | {themes} | {s.subcodes or ''} | {s.polarity} | {s.source}"
        line = R.score_summary(scores_of(s.scores), top=5)
        if line:
            tip += " | " + line
        style = (f"background:{colour}33;border-bottom:2px solid {colour}" if colour
                 else "background:#eeeeee")
        if blind:
            tip, style = f"segment {sid}", "border-bottom:1px dotted #999"
        if sid == focus:
            style += ";outline:2px solid #e69f00"
        anchor = f' id="seg-{sid}"' if sid not in anchored else ""
        anchored.add(sid)
        out.append(f'<span{anchor} title="{R.safe_markup(tip, newlines="&#10;")}" '
                   f'style="{style}">{in_html(piece)}</span>')
    muted = "color:#777;" if p["role"] == "interviewer" else ""
    head = (f"<b>{in_html(p['speaker'])}</b> <small>({in_html(p['role'])})</small><br>"
            if p["first"] else "")
    return f'<p style="{muted}">{head}{"".join(out)}</p>'


def scroll_to(anchor: str):
    """Scroll the page to an element id once Streamlit has drawn it (a fixed script: the id
    is seg-<number>)."""
    import streamlit.components.v1 as components

    if not re.fullmatch(r"seg-\d+", anchor):
        return
    components.html(f"""<script>
let n = 0;
const go = () => {{
  const el = window.parent.document.getElementById("{anchor}");
  if (el) {{ el.scrollIntoView({{block: "center"}}); }}
  else if (n++ < 50) {{ setTimeout(go, 100); }}
}};
go();
</script>""", height=0)


def document_memos(document_id: int):
    st.subheader("Memos on this document")
    memos = R.memos(store, document_id=document_id)
    for m in memos.itertuples(index=False):
        st.markdown(f"**{md(m.author)}** · {md(m.created_at[:16].replace('T', ' '))}  \n"
                    f"{md(m.text)}")
    if not len(memos):
        st.caption("No memos yet.")
    st.text_area("New memo (kept in the store and exported to .qdpx as a note)",
                 key=f"doc_memo_{document_id}", height=80)
    st.button("Save memo", key=f"save_doc_memo_{document_id}", disabled=not reviewer,
              on_click=add_document_memo, args=(document_id,))


def page_overview():
    st.header("Overview")
    ov = R.theme_overview(df, docs, CODEBOOK.theme_ids)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Segments", len(df))
    n_rev = int(df["reviewed"].astype(bool).sum()) if len(df) else 0
    c2.metric("Reviewed", f"{n_rev} ({n_rev / len(df):.1%})" if len(df) else "—")
    c3.metric("Documents", len(docs))
    c4.metric("Stakeholders", int(R.stakeholder_count(df, docs)))
    st.dataframe(ov, width="stretch", hide_index=True,
                 column_config={"reviewed": st.column_config.NumberColumn(
                     "reviewed", help="share of the theme's segments a reviewer decided",
                     format="percent"),
                     "reviewed_segments": st.column_config.NumberColumn(
                         "reviewed segments", help="segments of the theme a reviewer decided")})
    if len(ov):
        st.subheader("Barrier vs opportunity per theme")
        st.bar_chart(ov[ov["theme"] != "none"].set_index("theme")
                     [["barrier", "opportunity", "neutral"]],
                     color=["#d55e00", "#009e73", "#bbbbbb"])   # barrier red, opportunity green
    topics_under_themes()
    st.subheader("Documents")
    st.dataframe(docs[["name", "format", "version", "redacted", "ingested_at"]]
                 .assign(redacted=docs["redacted"].astype(bool)), width="stretch", hide_index=True)
    cols = ["segment_id", "document", "speaker", "start", "end", "text", "themes", "subcodes",
            "polarity", "confidence", "source", "reviewer", "memo"]
    st.download_button("Download the effective coding (CSV)",          # no live formulas
                       inert_table(df[cols]).to_csv(index=False),
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
                    f"{int(t['size'].sum())} segments · {md(words)}",
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
    st.caption(f"Topics run {run['id']} ({md(run.get('finished_at') or run.get('started_at'))}) · "
               f"{len(real)} topics · {int(table['size'].sum())} segments · "
               f"{int(real['emergent'].sum())} emergent (no sub-code close: candidate new codes). "
               + (f"{md(TV.emergent_rule(run))}. " if TV.emergent_rule(run) else "")
               + "Run `python -m qual topics` again to refit.")
    shown = table.assign(
        emergent=table["emergent"].map({True: "EMERGENT", False: ""}),
        similarity=table["similarity"].map(TV.similarity_text),
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
                 f"{r.subcode}{' · EMERGENT' if r.emergent else ''} · sim {TV.similarity_text(r.similarity)}")
        with st.expander(f"Topic {r.topic} ({r.size}) · {md(r.keywords)} — {md(where)}"):
            for ex in r.examples:
                st.markdown(quote(ex))


def page_agreement():
    from qual.agreement import agreement

    st.header("Agreement")
    blind = st.toggle("Only decisions coded blind", key="agree_blind",
                      help="Count only decisions reviewers made with the machine's coding "
                           "hidden (blind coding on the Review page).")
    res = agreement(store, CODEBOOK.theme_ids, blind_only=blind)
    if not len(res["pairs"]):
        st.info("No blind decisions yet: switch on blind coding on the Review page."
                if blind else
                "No reviewer decisions yet: agreement needs the machine and at least one "
                "reviewer.")
        return
    st.caption("Machine vs each reviewer, and reviewer vs reviewer, on the segments both coded. "
               "Cohen's κ per theme (presence/absence); Krippendorff's α on the theme sets. "
               + ("Blind decisions only: the reviewers did not see the machine's coding."
                  if blind else
                  "A reviewer's accept counts as agreeing with what they were shown, which "
                  "flatters the machine: for an honest figure, code a sample blind."))
    pairs = res["pairs"][res["pairs"]["segments"] > 0]      # pairs who coded nothing in common
    st.dataframe(pairs.round(3), width="stretch", hide_index=True)
    dis = res["disagreements"]
    st.subheader(f"Disagreements to resolve ({len(dis)})")
    if len(dis):
        text = df.set_index("segment_id")["text"]
        st.dataframe(dis.assign(text=dis["segment_id"].map(text)), width="stretch",
                     hide_index=True)


def page_downloads():
    import tempfile

    from qual.project import Project

    st.header("Downloads")
    redacted = bool(len(docs)) and bool(docs["redacted"].all())
    some = bool(len(docs)) and bool(docs["redacted"].any())
    st.caption("Redaction: " + ("applied to every document" if redacted else
                                "applied to some documents only" if some else
                                "not applied (the files contain the transcripts' names)")
               + ". Every file states it too. The files reflect the coding with every "
               "reviewer decision so far.")
    if st.button("Prepare the files", key="prepare", type="primary"):
        files = {}
        try:
            with st.spinner("Writing summaries and exports…"), \
                    tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp)
                project = Project(store, codebook=CODEBOOK, show_progress=False)
                _, written = project.summarise(out / "summary")
                for p in written.values():
                    files[Path(p).name] = Path(p).read_bytes()
                for fmt in ("csv", "xlsx", "qdpx"):
                    path = project.export(out / f"coding.{fmt}", name="qual project")
                    files[Path(path).name] = Path(path).read_bytes()
        except QualError as e:
            st.error(str(e))
            return
        st.session_state["downloads"] = files
    files = st.session_state.get("downloads")
    if not files:
        st.info("Press “Prepare the files” to build the theme summaries (Markdown, HTML, CSV) "
                "and the exports (CSV, Excel, REFI-QDA .qdpx for NVivo, ATLAS.ti, MAXQDA).")
        return
    mime = {".md": "text/markdown", ".html": "text/html", ".csv": "text/csv",
            ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ".qdpx": "application/zip"}
    for name, data in files.items():
        st.download_button(f"Download {name}", data, file_name=name, key=f"dl_{name}",
                           mime=mime.get(Path(name).suffix, "application/octet-stream"))


try:
    {"Review queue": page_review, "Transcript": page_transcript, "Overview": page_overview,
     "Topics": page_topics, "Agreement": page_agreement, "Downloads": page_downloads}[page]()
finally:
    store.close()
