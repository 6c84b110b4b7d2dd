"""The nightly insight report: one self-contained HTML page per as-of date, every chart inline as a base64 PNG.

Sections: segment counts and the change vs the previous night; a 2-D map of the calls coloured by theme (PCA of
the mean customer-utterance vector of each call); top terms and example quotes per theme; days-late histograms
per segment; action counts; contact-rule outcomes (when the warehouse has them); data quality (loaded,
quarantined, by rule). The page loads nothing from the network and runs no script.

Glossary: dpd = days past due. A *theme* is a call cluster (its name from ``call_clusters``); calls left in the
review queue (no theme near enough) are grouped by their own intent ("unclustered: hardship").
"""

from __future__ import annotations

import base64
import html
import io
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.publish import analyst_view_sql
from pipelines.warehouse import Session, Warehouse

log = logging.getLogger(__name__)

SEGMENT_ORDER = ["hardship", "forgetful", "intent_to_default", "needs_review"]
SEGMENT_COLOURS = {"hardship": "#d95f02", "forgetful": "#1b9e77", "intent_to_default": "#7570b3",
                   "needs_review": "#999999"}
UNCLUSTERED = "unclustered: "
OTHER_THEMES = "other themes"
OUTCOME_COLUMNS = ["segment", "treatment", "experiment_group", "customers", "overdue_customers",
                   "followed_customers", "cured", "rolled_forward", "cure_rate", "roll_rate", "amount_recovered"]


@dataclass(frozen=True)
class Chart:
    """One rendered chart: a title, the PNG bytes and the text for ``alt``."""

    key: str
    title: str
    png: bytes
    alt: str


@dataclass(frozen=True)
class ReportResult:
    """Where the report was written and what it holds."""

    path: Path
    as_of: date
    charts: list[str]
    sections: dict[str, bool] = field(default_factory=dict)  # section -> had data
    cjk_font: str | None = None


# --- fonts -------------------------------------------------------------------------------------------------------


def register_cjk_font(candidates: Sequence[str | Path]) -> str | None:
    """Register the first existing font file with Chinese glyphs with matplotlib; return its family name.

    The family goes first in ``font.sans-serif`` (DejaVu Sans after it for Latin glyphs it lacks), so chart text
    in Chinese renders instead of showing empty boxes. Returns None (and logs) when no candidate exists.
    """
    import matplotlib
    from matplotlib import font_manager

    for candidate in candidates:
        path = Path(candidate)
        if not path.is_file():
            continue
        font_manager.fontManager.addfont(str(path))
        family = font_manager.FontProperties(fname=str(path)).get_name()
        matplotlib.rcParams["font.family"] = "sans-serif"
        matplotlib.rcParams["font.sans-serif"] = [family, "DejaVu Sans"]
        matplotlib.rcParams["axes.unicode_minus"] = False
        return family
    log.warning("no CJK font found among %s: Chinese chart text will not render (install fonts-wqy-microhei)",
                [str(c) for c in candidates])
    return None


# --- pure transforms ---------------------------------------------------------------------------------------------


def segment_change(mix: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Return tonight's customers per segment, the previous night's and the change (from segment_mix_by_night)."""
    tonight = mix[pd.to_datetime(mix["as_of"]).dt.date == as_of]
    frame = pd.DataFrame({
        "segment": tonight["segment"].astype(str),
        "customers": tonight["customers"].astype("int64"),
        "previous_night": pd.to_datetime(tonight["previous_as_of"]).dt.date,
        "previous_customers": tonight["previous_customers"].astype("Int64"),
        "change": tonight["change_vs_previous_night"].astype("Int64"),
    })
    order = {name: rank for rank, name in enumerate(SEGMENT_ORDER)}
    return frame.sort_values("segment", key=lambda s: s.map(lambda v: order.get(v, len(order)))) \
        .reset_index(drop=True)


def action_counts(rows: pd.DataFrame, column: str = "action") -> pd.DataFrame:
    """Return customers per single action; a row's ``column`` joins several with ``+`` or ``;``. Most first."""
    if rows.empty:
        return pd.DataFrame({"action": pd.Series(dtype=str), "customers": pd.Series(dtype="int64")})
    actions = rows[column].fillna("").astype(str).str.split(r"[+;]", regex=True).explode().str.strip()
    counts = actions[actions != ""].value_counts()
    frame = pd.DataFrame({"action": counts.index.astype(str), "customers": counts.to_numpy().astype("int64")})
    return frame.sort_values(["customers", "action"], ascending=[False, True]).reset_index(drop=True)


def theme_labels(calls: pd.DataFrame, clusters: pd.DataFrame) -> pd.Series:
    """Return each call's theme: its theme's name, or ``unclustered: <intent>`` for calls left for review.

    ``cluster_id`` is the call's final theme (HDBSCAN outliers close to a theme are rescued into it; ``is_outlier``
    keeps the pre-rescue flag), and -1 marks the review queue.
    """
    names = dict(zip(clusters["cluster_id"].astype("int64"), clusters["name"].astype(str), strict=True)) \
        if len(clusters) else {}
    labels = [
        names[int(cluster)] if int(cluster) in names else f"{UNCLUSTERED}{intent}"
        for cluster, intent in zip(calls["cluster_id"], calls["intent"], strict=True)
    ]
    return pd.Series(labels, index=calls.index, dtype=object)


def mean_call_vectors(utterances: pd.DataFrame, vectors: Mapping[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    """Return the call ids (sorted) and the mean vector of each call's utterances (those with a vector)."""
    rows: dict[str, list[np.ndarray]] = {}
    for call_id, content_hash in zip(utterances["call_id"], utterances["content_hash"], strict=True):
        if content_hash in vectors:
            rows.setdefault(str(call_id), []).append(np.asarray(vectors[content_hash], dtype=np.float64))
    call_ids = sorted(rows)
    if not call_ids:
        return [], np.zeros((0, 0))
    return call_ids, np.vstack([np.mean(rows[c], axis=0) for c in call_ids])


def pca_2d(matrix: np.ndarray) -> np.ndarray:
    """Return the first two principal components of the rows (deterministic signs; zeros when too few rows)."""
    if matrix.ndim != 2 or len(matrix) < 2:
        return np.zeros((len(matrix), 2))
    centred = matrix - matrix.mean(axis=0)
    # the top eigenvectors of the (features x features) scatter matrix are the SVD's right singular vectors; one
    # matrix product and a small eigh instead of an SVD of the (calls x features) matrix (10x faster at 20k calls)
    eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred)
    components = eigenvectors[:, np.argsort(eigenvalues)[::-1][:2]].T
    signs = np.sign(components[np.arange(len(components)), np.abs(components).argmax(axis=1)])
    projected = centred @ (components * signs[:, None]).T
    if projected.shape[1] < 2:
        projected = np.hstack([projected, np.zeros((len(projected), 2 - projected.shape[1]))])
    return projected


def theme_table(calls: pd.DataFrame, clusters: pd.DataFrame, computed_terms: Mapping[str, Sequence[str]],
                quotes_per_theme: int = 3) -> pd.DataFrame:
    """Return one row per theme: calls, customers, intent, top terms and the clearest example quotes."""
    stored_terms = dict(zip(clusters["name"].astype(str), clusters["top_terms"].fillna("").astype(str),
                            strict=True)) if len(clusters) else {}
    rows = []
    for theme, members in calls.groupby("theme", sort=False):
        quotes = members[members["evidence"].fillna("").astype(str).str.strip() != ""] \
            .sort_values(["intent_score", "call_id"], ascending=[False, True])["evidence"].drop_duplicates()
        terms = stored_terms.get(str(theme)) or " ".join(computed_terms.get(str(theme), []))
        rows.append({"theme": str(theme), "calls": len(members), "customers": members["customer_id"].nunique(),
                     "intent": str(members["intent"].mode().iloc[0]), "top_terms": terms,
                     "quotes": [str(q) for q in quotes.head(quotes_per_theme)]})
    frame = pd.DataFrame(rows, columns=["theme", "calls", "customers", "intent", "top_terms", "quotes"])
    return frame.sort_values(["calls", "theme"], ascending=[False, True]).reset_index(drop=True)


# --- reading the warehouse ---------------------------------------------------------------------------------------


def _view(session: Session, name: str, as_of: date | None = None) -> pd.DataFrame:
    where = " where as_of = $as_of" if as_of else ""
    return session.frame(f"select * from (\n{analyst_view_sql(name)}\n) as view_rows{where}",
                         {"as_of": as_of} if as_of else None)


def _vectors(session: Session, hashes: list[str], model_ids: list[str]) -> dict[str, np.ndarray]:
    if not hashes:
        return {}
    rows = session.frame(
        "select content_hash, vector from embedding_cache "
        "where content_hash in (select unnest($hashes)) and model_id in (select unnest($model_ids))",
        {"hashes": hashes, "model_ids": model_ids})
    return {str(h): np.asarray(v, dtype=np.float32) for h, v in zip(rows["content_hash"], rows["vector"],
                                                                       strict=True)}


@dataclass
class _Content:
    as_of: date
    source: Path
    nights: list[date]
    segments: pd.DataFrame
    change: pd.DataFrame
    calls: pd.DataFrame
    themes: pd.DataFrame
    map_points: np.ndarray
    map_themes: list[str]
    lateness: pd.DataFrame
    installment_lateness: pd.DataFrame
    actions: pd.DataFrame
    actions_source: str
    outcomes: pd.DataFrame
    contact_table: str | None
    contact_rules: pd.DataFrame
    reconciliation: pd.DataFrame
    quarantine: pd.DataFrame


def _read_content(session: Session, source: Path, as_of: date, settings: Mapping[str, Any]) -> _Content:
    from insights.clustering import cluster_top_terms
    from pipelines.call_insight import recalled_text_terms

    tables = session.table_names()
    if "care_segments" not in tables:
        raise ValueError(f"{source} has no care_segments table: is it a postloan-care warehouse?")
    params = {"as_of": as_of}
    nights = [d.date() if hasattr(d, "date") else d for d in
              session.frame("select distinct as_of from care_segments order by as_of")["as_of"]]
    if as_of not in nights:
        raise ValueError(f"no care segments for {as_of} in {source} (nights: "
                         f"{', '.join(str(n) for n in nights[-5:]) or 'none'})")
    segments = session.frame("select * from care_segments where as_of = $as_of", params)
    change = segment_change(_view(session, "segment_mix_by_night", as_of), as_of)

    has_calls = {"call_insights", "call_utterances", "embedding_cache"} <= tables
    calls = session.frame("select * from call_insights where as_of = $as_of order by call_id", params) \
        if has_calls else pd.DataFrame(columns=["call_id", "customer_id", "cluster_id", "is_outlier", "intent",
                                                "intent_score", "evidence", "model_id"])
    clusters = session.frame("select * from call_clusters where as_of = $as_of", params) \
        if "call_clusters" in tables else pd.DataFrame(columns=["cluster_id", "name", "top_terms"])
    calls = calls.assign(theme=theme_labels(calls, clusters) if len(calls) else pd.Series(dtype=object))
    utterances = session.frame("select call_id, text, content_hash, model_id from call_utterances "
                               "where as_of = $as_of order by call_id, turn_no", params) \
        if has_calls else pd.DataFrame(columns=["call_id", "text", "content_hash", "model_id"])
    theme_of_call = dict(zip(calls["call_id"], calls["theme"], strict=True))
    known = utterances[utterances["call_id"].isin(theme_of_call)]
    recalled_text_terms(session, known["text"].astype(str))  # segmented once, by the call_insight stage
    computed = cluster_top_terms(known["text"].astype(str).tolist(),
                                 [theme_of_call[c] for c in known["call_id"]], 6) if len(known) else {}
    themes = theme_table(calls, clusters, {str(k): v for k, v in computed.items()})

    vectors = _vectors(session, sorted(set(known["content_hash"].astype(str))),
                       sorted(set(known["model_id"].astype(str))))
    call_ids, matrix = mean_call_vectors(known, vectors)
    map_points = pca_2d(matrix)
    map_themes = [str(theme_of_call[c]) for c in call_ids]

    lateness = segments[["customer_id", "segment", "days_past_due"]]
    installment_lateness = session.frame(
        "select s.segment, i.days_late from installment_status i join care_segments s using (as_of, customer_id) "
        "where i.as_of = $as_of and i.is_fully_paid and i.days_late > 0", params) \
        if "installment_status" in tables else pd.DataFrame(columns=["segment", "days_late"])
    earlier = [n for n in nights if n < as_of]
    outcomes = _view(session, "outcomes_by_segment", earlier[-1]) if earlier and "customer_behaviour" in tables \
        else pd.DataFrame()
    contact_table, contact_rules = _contact_rules(session, tables, as_of, settings)
    offered = session.frame("select customer_id, treatments from care_actions where as_of = $as_of", params) \
        if "care_actions" in tables else pd.DataFrame()
    actions, actions_source = (action_counts(offered, "treatments"), "offered tonight (care_actions.treatments)") \
        if len(offered) else (action_counts(segments), "recommended by the segment (care_segments.action)")
    reconciliation = session.frame(
        "select source_file, rows_read, rows_loaded, rows_quarantined from load_reconciliation "
        "where as_of = $as_of order by source_file", params) if "load_reconciliation" in tables else pd.DataFrame()
    quarantine = session.frame(
        "select source_file, rule, count(*) as rows from quarantine where as_of = $as_of "
        "group by all order by rows desc, source_file, rule", params) if "quarantine" in tables else pd.DataFrame()
    return _Content(as_of=as_of, source=source, nights=nights, segments=segments, change=change, calls=calls,
                    themes=themes, map_points=map_points, map_themes=map_themes, lateness=lateness,
                    installment_lateness=installment_lateness, actions=actions, actions_source=actions_source,
                    outcomes=outcomes,
                    contact_table=contact_table, contact_rules=contact_rules, reconciliation=reconciliation,
                    quarantine=quarantine)


def _contact_rules(session: Session, tables: set[str], as_of: date,
                   settings: Mapping[str, Any]) -> tuple[str | None, pd.DataFrame]:
    for table in (settings.get("report") or {}).get("contact_rule_tables") or []:
        if table in tables:
            columns = session.table_columns(table)
            where = " where as_of = $as_of" if "as_of" in columns else ""
            rows = session.frame(f"select * from {table}{where} limit 200", {"as_of": as_of})
            if len(rows):
                return table, rows.drop(columns=["as_of"], errors="ignore")
    return None, pd.DataFrame()


# --- charts ------------------------------------------------------------------------------------------------------


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    return buffer.getvalue()


def chart_segment_counts(change: pd.DataFrame) -> Chart:
    """Bar chart: customers per segment tonight next to the previous night."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 3.6))
    axes = figure.subplots()
    x = np.arange(len(change))
    previous = change["previous_customers"].astype("float64").fillna(0).to_numpy()
    axes.bar(x - 0.2, previous, width=0.4, color="#cccccc", label="previous night")
    colours = [SEGMENT_COLOURS.get(s, "#555555") for s in change["segment"]]
    bars = axes.bar(x + 0.2, change["customers"].to_numpy(), width=0.4, color=colours, label="tonight")
    axes.bar_label(bars, padding=2)
    axes.set_xticks(x, list(change["segment"]))
    axes.set_ylabel("customers")
    axes.set_title("客户分群 care segments: tonight vs the previous night")
    axes.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
    axes.spines[["top", "right"]].set_visible(False)
    return Chart("segments", "Segment counts", _png(figure),
                 "customers per care segment tonight and the previous night")


def chart_call_map(points: np.ndarray, themes: Sequence[str], themes_shown: int) -> Chart:
    """Scatter plot of the calls in two PCA dimensions, coloured by theme (the largest themes named)."""
    from matplotlib.figure import Figure

    counts = pd.Series(list(themes), dtype=object).value_counts()
    named = list(counts.index[:themes_shown])
    labels = [t if t in named else OTHER_THEMES for t in themes]
    figure = Figure(figsize=(9, 5.5))
    axes = figure.subplots()
    palette = [f"C{i}" for i in range(10)] + ["#8c564b", "#e377c2", "#bcbd22", "#17becf", "#393b79"]
    for rank, theme in enumerate([*named, OTHER_THEMES]):
        mask = np.array([label == theme for label in labels], dtype=bool)
        if not mask.any():
            continue
        colour = "#bbbbbb" if theme == OTHER_THEMES else palette[rank % len(palette)]
        short = theme if len(theme) <= 38 else theme[:37] + "…"
        axes.scatter(points[mask, 0], points[mask, 1], s=22, alpha=0.8, color=colour,
                     label=f"{short} ({int(mask.sum())})")
    axes.set_xlabel("PC 1")
    axes.set_ylabel("PC 2")
    axes.set_title(f"通话主题地图 calls by theme ({len(points)} calls, PCA of the call vectors)")
    axes.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, fontsize=8)
    axes.spines[["top", "right"]].set_visible(False)
    return Chart("call_map", "Calls by theme", _png(figure), "2-D map of the calls coloured by theme")


def chart_days_late(lateness: pd.DataFrame, installment_lateness: pd.DataFrame) -> Chart:
    """Histograms per segment: days past due tonight, and days late of the installments paid late."""
    from matplotlib.figure import Figure

    segments = [s for s in SEGMENT_ORDER if s in set(lateness["segment"])] + sorted(
        set(lateness["segment"]) - set(SEGMENT_ORDER))
    figure = Figure(figsize=(3 * max(len(segments), 1), 5.2))
    grid = figure.subplots(2, max(len(segments), 1), squeeze=False)
    dpd_max = max(int(lateness["days_past_due"].fillna(0).max() or 0), 1)
    late_max = max(int(installment_lateness["days_late"].max() or 0), 1) if len(installment_lateness) else 1
    for column, segment in enumerate(segments):
        colour = SEGMENT_COLOURS.get(segment, "#555555")
        dpd = lateness.loc[lateness["segment"] == segment, "days_past_due"].fillna(0).to_numpy(dtype=float)
        grid[0][column].hist(dpd, bins=np.linspace(0, dpd_max, 16), color=colour)
        grid[0][column].set_title(f"{segment} (n={len(dpd)})", fontsize=10)
        late = installment_lateness.loc[installment_lateness["segment"] == segment, "days_late"] \
            .to_numpy(dtype=float)
        grid[1][column].hist(late, bins=np.linspace(0, late_max, 16), color=colour, alpha=0.7)
        grid[0][column].set_xlabel("days past due tonight 逾期天数", fontsize=8)
        grid[1][column].set_xlabel("days late of installments paid late", fontsize=8)
    grid[0][0].set_ylabel("customers")
    grid[1][0].set_ylabel("installments")
    figure.suptitle("Days late per segment")
    figure.tight_layout()
    return Chart("days_late", "Days late per segment", _png(figure),
                 "histograms of days past due and of days late, per segment")


def chart_bars(frame: pd.DataFrame, label: str, value: str, title: str, key: str, colour: str) -> Chart:
    """Horizontal bar chart of ``value`` per ``label`` (largest on top)."""
    from matplotlib.figure import Figure

    shown = frame.head(25).iloc[::-1]
    figure = Figure(figsize=(8, 0.6 + 0.32 * max(len(shown), 1)))
    axes = figure.subplots()
    bars = axes.barh(shown[label].astype(str), shown[value].to_numpy(dtype=float), color=colour)
    axes.bar_label(bars, padding=2, fmt="%d")
    axes.set_title(title)
    axes.spines[["top", "right"]].set_visible(False)
    return Chart(key, title, _png(figure), title)


# --- the page ----------------------------------------------------------------------------------------------------


_STYLE = """
body { font-family: "WenQuanYi Micro Hei", "Noto Sans CJK SC", "Noto Sans SC", sans-serif; margin: 24px auto;
       max-width: 1180px; color: #222; line-height: 1.45; }
h1 { font-size: 24px; } h2 { font-size: 19px; margin-top: 34px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
td.num { text-align: right; } img.chart { max-width: 100%; display: block; margin: 8px 0; }
.muted { color: #777; } .quote { font-style: italic; }
.up { color: #b30000; } .down { color: #006d2c; }
"""


def _cell_text(value: Any) -> str:
    if value is None or (not isinstance(value, (list, str)) and pd.isna(value)):
        return ""
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat() if value == value.normalize() else value.isoformat()
    return str(value)


def _table(frame: pd.DataFrame, max_rows: int = 60) -> str:
    if frame.empty:
        return '<p class="muted">no rows</p>'
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for row in frame.head(max_rows).itertuples(index=False):
        cells = []
        for value in row:
            numeric = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
            text = _cell_text(value)
            cells.append(f'<td class="num">{html.escape(text)}</td>' if numeric else f"<td>{html.escape(text)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    more = f'<p class="muted">{len(frame) - max_rows} more rows not shown</p>' if len(frame) > max_rows else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"


def _img(chart: Chart) -> str:
    data = base64.b64encode(chart.png).decode("ascii")
    return (f'<img class="chart" id="chart-{chart.key}" alt="{html.escape(chart.alt)}" '
            f'src="data:image/png;base64,{data}">')


def _change_cell(change: Any) -> str:
    if change is None or pd.isna(change):
        return '<td class="num muted">first night</td>'
    value = int(change)
    css = "up" if value > 0 else "down" if value < 0 else ""
    return f'<td class="num {css}">{value:+d}</td>'


def _segment_section(content: _Content, charts: dict[str, Chart]) -> str:
    previous = content.change["previous_night"].dropna()
    rows = "".join(
        f"<tr><td>{html.escape(str(r.segment))}</td><td class='num'>{int(r.customers)}</td>"
        f"<td class='num'>{'' if pd.isna(r.previous_customers) else int(r.previous_customers)}</td>"
        f"{_change_cell(r.change)}</tr>"
        for r in content.change.itertuples(index=False))
    versus = f"vs {previous.iloc[0]}" if len(previous) else "(no previous night in this warehouse)"
    return (f"<h2 id='segments'>Care segments tonight {versus}</h2>"
            f"<table><thead><tr><th>segment</th><th>customers</th><th>previous night</th><th>change</th></tr>"
            f"</thead><tbody>{rows}</tbody></table>{_img(charts['segments'])}")


def _theme_section(content: _Content, charts: dict[str, Chart], themes_shown: int) -> str:
    if "call_map" not in charts:
        return ("<h2 id='themes'>Call themes</h2><p class='muted'>not available: no calls with customer words "
                "in the window of this night</p>")
    rows = []
    for theme in content.themes.head(themes_shown).itertuples(index=False):
        quotes = "".join(f"<li class='quote'>{html.escape(q)}</li>" for q in theme.quotes) or "<li>-</li>"
        rows.append(f"<tr><td>{html.escape(theme.theme)}</td><td>{html.escape(theme.intent)}</td>"
                    f"<td class='num'>{theme.calls}</td><td class='num'>{theme.customers}</td>"
                    f"<td>{html.escape(theme.top_terms)}</td><td><ul>{quotes}</ul></td></tr>")
    silent = len(content.calls) - len(content.map_points)
    return (f"<h2 id='themes'>Call themes</h2><p>{len(content.calls)} calls in the window; "
            f"{len(content.map_points)} with customer words are on the map"
            f"{f', {silent} where the customer said nothing are not' if silent > 0 else ''}.</p>"
            f"{_img(charts['call_map'])}"
            f"<h3>Top terms and example quotes per theme</h3><table class='themes'><thead><tr><th>theme</th>"
            f"<th>intent</th><th>calls</th><th>customers</th><th>top terms</th><th>example quotes (redacted)</th>"
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _render(content: _Content, charts: dict[str, Chart], settings: Mapping[str, Any]) -> str:
    themes_shown = int((settings.get("report") or {}).get("themes_shown", 12))
    contact = (f"<p>From <code>{html.escape(content.contact_table)}</code>.</p>{_table(content.contact_rules)}"
               if content.contact_table else
               "<p class='muted'>not available: this warehouse has no contact-rule outcomes for this night.</p>")
    shown = [c for c in OUTCOME_COLUMNS if c in content.outcomes.columns]
    outcomes = (f"<p>Customers of the previous night, followed to tonight. Treatment: what care_actions offered "
                f"(treatment or control group), else the segment's recommended action.</p>"
                f"{_table(content.outcomes[shown])}"
                if len(content.outcomes) else "<p class='muted'>not available: no earlier night to follow.</p>")
    quality = (_table(content.reconciliation) + "<h3>Quarantined rows by rule</h3>" + _table(content.quarantine)
               + (_img(charts["quarantine"]) if "quarantine" in charts else ""))
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<link rel='icon' href='data:,'>",
        f"<title>postloan-care nightly report {content.as_of}</title><style>{_STYLE}</style></head><body>",
        f"<h1>postloan-care nightly report — {content.as_of}</h1>",
        f"<p class='muted'>From {html.escape(str(content.source))}; {len(content.segments)} customers in scope; "
        f"nights in the warehouse: {len(content.nights)}.</p>",
        _segment_section(content, charts),
        _theme_section(content, charts, themes_shown),
        f"<h2 id='days-late'>Days late per segment</h2>{_img(charts['days_late'])}",
        f"<h2 id='actions'>Actions</h2><p>Customers per action, {html.escape(content.actions_source)}.</p>"
        f"{_img(charts['actions'])}{_table(content.actions)}",
        f"<h2 id='outcomes'>Outcomes by segment and treatment</h2>{outcomes}",
        f"<h2 id='contact-rules'>Contact-rule outcomes</h2>{contact}",
        f"<h2 id='data-quality'>Data quality</h2>{quality}",
        "</body></html>\n",
    ]
    return "\n".join(parts)


def reports_dir(warehouse: Path, settings: Mapping[str, Any]) -> Path:
    """Return where reports go: ``report.dir``, else ``reports/`` next to the warehouse file."""
    configured = (settings.get("report") or {}).get("dir")
    return Path(configured) if configured else Path(warehouse).resolve().parent / "reports"


def write_report(warehouse: Path, as_of: date, out_dir: Path, settings: Mapping[str, Any]) -> ReportResult:
    """Read the warehouse (read-only) and write ``<out_dir>/<as_of>/index.html``, replacing an older one."""
    warehouse = Path(warehouse)
    if not warehouse.is_file():
        raise FileNotFoundError(f"warehouse {warehouse} not found")
    options = settings.get("report") or {}
    font = register_cjk_font(options.get("cjk_fonts") or [])
    with Warehouse(warehouse).session(read_only=True) as session:
        content = _read_content(session, warehouse, as_of, settings)
    charts = {"segments": chart_segment_counts(content.change),
              "days_late": chart_days_late(content.lateness, content.installment_lateness),
              "actions": chart_bars(content.actions, "action", "customers", "Customers per action tonight",
                                    "actions", "#4c72b0")}
    if len(content.map_points) >= 2:
        charts["call_map"] = chart_call_map(content.map_points, content.map_themes, int(options.get("themes_shown",
                                                                                                     12)))
    if len(content.quarantine):
        by_rule = content.quarantine.assign(rule=content.quarantine["source_file"] + ": " + content.quarantine["rule"])
        charts["quarantine"] = chart_bars(by_rule, "rule", "rows", "Quarantined rows by rule", "quarantine",
                                          "#c44e52")
    page = _render(content, charts, settings)
    folder = Path(out_dir) / as_of.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "index.html"
    temporary = folder / f".index.html.tmp-{os.getpid()}"
    temporary.write_text(page, encoding="utf-8")
    temporary.replace(target)
    sections = {"themes": "call_map" in charts, "outcomes": len(content.outcomes) > 0,
                "contact_rules": content.contact_table is not None, "data_quality": len(content.reconciliation) > 0}
    log.info("report for %s written to %s (%d charts, %.0f KB)", as_of, target, len(charts),
             target.stat().st_size / 1024)
    return ReportResult(path=target, as_of=as_of, charts=sorted(charts), sections=sections, cjk_font=font)
