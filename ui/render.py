"""Turning figures into HTML fragments for the templates."""

from __future__ import annotations

import itertools
from datetime import datetime

import plotly.graph_objects as go
import plotly.io as pio
from markupsafe import Markup

from tracehouse.ui.figures import PLOT_CONFIG

_ids = itertools.count(1)

# Clicking a point whose customdata is a URL opens it; zooming a time axis sets the page's range
# (see static/app.js).
_CLICK_SCRIPT = "if (window.thFollowClicks) { window.thFollowClicks('{plot_id}'); }"
_ZOOM_SCRIPT = "if (window.thFollowZoom) { window.thFollowZoom('{plot_id}'); }"


def figure_html(fig: go.Figure, *, name: str | None = None, clickable: bool = False,
                static: bool = False) -> Markup:
    """The figure as a `<div>` plus the script that draws it (plotly.js is loaded by the page).
    A figure whose x axis is a date axis zooms the whole page to the span dragged across it."""
    div_id = f"fig-{name}" if name else f"fig-{next(_ids)}"
    config = dict(PLOT_CONFIG)
    if static:
        config.update({"staticPlot": False, "displayModeBar": False})
    html = pio.to_html(fig, include_plotlyjs=False, full_html=False, config=config, div_id=div_id,
                       default_height=f"{fig.layout.height or 360}px",
                       post_script=[script for script, wanted in ((_CLICK_SCRIPT, clickable),
                                                                  (_ZOOM_SCRIPT, not static and is_time_chart(fig)))
                                    if wanted] or None)
    return Markup(html)  # noqa: S704 - plotly's own output; it escapes the data it embeds as JSON


def is_time_chart(fig: go.Figure) -> bool:
    return fig.layout.xaxis.type == "date" or any(
        getattr(trace, "x", None) is not None and len(trace.x) and isinstance(trace.x[0], datetime)
        for trace in fig.data)
