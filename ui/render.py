"""Turning figures into HTML fragments for the templates."""

from __future__ import annotations

import itertools

import plotly.graph_objects as go
import plotly.io as pio
from markupsafe import Markup

from tracehouse.ui.figures import PLOT_CONFIG

_ids = itertools.count(1)

# Clicking a point whose customdata is a URL opens it (see static/app.js).
_CLICK_SCRIPT = "if (window.thFollowClicks) { window.thFollowClicks('{plot_id}'); }"


def figure_html(fig: go.Figure, *, name: str | None = None, clickable: bool = False,
                static: bool = False) -> Markup:
    """The figure as a `<div>` plus the script that draws it (plotly.js is loaded by the page)."""
    div_id = f"fig-{name}" if name else f"fig-{next(_ids)}"
    config = dict(PLOT_CONFIG)
    if static:
        config.update({"staticPlot": False, "displayModeBar": False})
    html = pio.to_html(fig, include_plotlyjs=False, full_html=False, config=config, div_id=div_id,
                       default_height=f"{fig.layout.height or 360}px",
                       post_script=_CLICK_SCRIPT if clickable else None)
    return Markup(html)  # noqa: S704 - plotly's own output; it escapes the data it embeds as JSON
