"""A `Report` as one self-contained HTML page: plotly.js inlined once, a chart per account and
metric, the audience breakdowns and the top media. Opening it needs no network.

Why plotly (the `report` extra): its Python package ships plotly.js, so the page inlines the
library from the wheel (`plotly.offline.get_plotlyjs`) and draws gaps as gaps (a None breaks
the line: `connectgaps` is off by default). Altair would need vega, vega-lite and vega-embed
inlined by hand (its standalone HTML loads them from a CDN unless vl-convert is installed);
bokeh's inline resources work too but its gap handling needs NaN juggling; matplotlib gives
static images only.
"""

from __future__ import annotations

import html
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from igsync.errors import InputError

if TYPE_CHECKING:
    from igsync.report import AccountReport, Report


def require_plotly() -> None:
    """Raises InputError (exit 2, saying how to install it) when plotly is missing."""
    try:
        import plotly  # noqa: F401
    except ImportError:
        raise InputError(
            "--html needs plotly, the report extra: uv tool install '.[report]' in the igsync"
            " checkout"
        ) from None


def _div(data: list[dict[str, Any]], layout: dict[str, Any]) -> str:
    import plotly.io

    # Plain dicts, unvalidated: building graph_objects validates every property, which made
    # a page of 300 charts take seconds (benchmarks/report.py). The library is inlined once in
    # <head>: each chart brings only its own data.
    text: str = plotly.io.to_html(
        {"data": data, "layout": layout},
        validate=False,
        full_html=False,
        include_plotlyjs=False,
        config={"displaylogo": False, "responsive": True},
    )
    return text


_AXIS = {"gridcolor": "#e5e5e5", "zerolinecolor": "#cccccc", "automargin": True}


def _layout(title: str, x: dict[str, Any], y: dict[str, Any], height: int = 300) -> dict[str, Any]:
    return {
        "title": {"text": title},
        "height": height,
        "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
        "plot_bgcolor": "white",
        "xaxis": {**_AXIS, **x},
        "yaxis": {**_AXIS, **y},
    }


def _account_html(account: AccountReport, report: Report) -> str:
    parts = [f"<h2>Account {html.escape(account.account_id)}</h2>"]
    parts.append(f"<p class='who'>user {html.escape(str(account.u_id))}</p>")
    dates = [d.isoformat() for d in report.dates]
    # the whole period, so days without a value at either end show as the gaps they are
    period = {
        "type": "date",
        "range": [f"{report.since - timedelta(days=1)} 12:00", f"{report.until} 12:00"],
    }
    for series in account.metrics:
        change = "" if series.change_pct is None else f" ({series.change_pct:+.1f}% vs previous)"
        # a None breaks the line (connectgaps is off): a day without a value stays a gap
        trace = {
            "type": "scatter",
            "x": dates,
            "y": series.values,
            "mode": "lines+markers",
            "name": series.metric,
        }
        layout = _layout(f"{series.metric}{change}", period, {})
        parts.append(f"<div class='chart metric'>{_div([trace], layout)}</div>")
    for breakdown in account.audience:
        top = breakdown.top[::-1]  # plotly draws the first bar at the bottom
        trace = {
            "type": "bar",
            "orientation": "h",
            "x": [value for _, value in top],
            "y": [label for label, _ in top],
        }
        layout = _layout(
            f"{breakdown.metric} by {breakdown.breakdown} ({breakdown.timeframe},"
            f" captured {breakdown.captured_on})",
            {},
            {"type": "category"},
            height=max(250, 40 + 28 * len(top)),
        )
        parts.append(f"<div class='chart audience'>{_div([trace], layout)}</div>")
    for title, items in (("Top media", account.top_media), ("Top stories", account.top_stories)):
        if not items:
            continue
        trace = {"type": "bar", "x": [m.media_id for m in items], "y": [m.value for m in items]}
        layout = _layout(f"{title} by {items[0].metric}", {"type": "category"}, {})
        parts.append(f"<div class='chart media'>{_div([trace], layout)}</div>")
        rows = "".join(
            "<tr>"
            f"<td>{_link(m.permalink, m.media_id)}</td>"
            f"<td>{html.escape(m.media_product_type or '')} {html.escape(m.media_type or '')}</td>"
            f"<td>{html.escape(m.timestamp or '')}</td>"
            f"<td>{html.escape(m.metric)}</td><td class='n'>{m.value:,}</td>"
            "</tr>"
            for m in items
        )
        parts.append(
            f"<table><caption>{title}</caption><tr><th>media</th><th>type</th>"
            f"<th>posted (UTC)</th><th>metric</th><th>value</th></tr>{rows}</table>"
        )
    return "\n".join(parts)


def _link(url: str | None, text: str) -> str:
    if url and url.startswith("https://"):
        return f"<a href='{html.escape(url, quote=True)}'>{html.escape(text)}</a>"
    return html.escape(text)


def render_html(report: Report) -> str:
    """The page as text (UTF-8). Raises InputError when plotly is missing (require_plotly)."""
    require_plotly()
    from plotly.offline import get_plotlyjs

    body = "\n".join(_account_html(a, report) for a in report.accounts) or (
        "<p>No rows stored for these dates: run <code>igsync fetch</code> first (the demo's"
        " rows: <code>igsync demo</code>, then <code>igsync report --demo --html FILE</code>).</p>"
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>igsync report {report.since} to {report.until}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
.chart {{ max-width: 900px; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ddd; padding: 4px 8px; }}
td.n {{ text-align: right; }}
.who {{ color: #666; }}
</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head>
<body>
<h1>igsync report</h1>
<p>Account-local dates {report.since} to {report.until} ({len(report.dates)} days); changes
compare the mean daily value with {report.previous_since} to {report.previous_until}.
A break in a line is a day with no stored value.</p>
{body}
</body>
</html>
"""
