"""Small charts drawn on the server as inline SVG: no script, no CDN, readable without JavaScript."""
from __future__ import annotations

from typing import Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe


def bar_chart(values: Sequence[float | None], *, labels: Sequence[str] | None = None, width: int = 240,
              height: int = 36, colour: str = "#417690", title: str = "", unit: str = "") -> SafeString:
    """Bars for `values` (None: no data, drawn as a gap), scaled to the largest; each bar's tooltip
    says its label and value. `title` is the chart's accessible name."""
    n = max(len(values), 1)
    top = max((v for v in values if v), default=0) or 1
    step = width / n
    bar = max(step - 1, 1)
    bars = []
    for i, value in enumerate(values):
        if value is None:
            continue
        h = max(round(height * value / top, 1), 1 if value else 0)
        label = labels[i] if labels else str(i)
        bars.append((f"{i * step:.1f}", f"{height - h:.1f}", f"{bar:.1f}", f"{h:.1f}", colour,
                     f"{label}: {_fmt(value)}{unit}"))
    body = format_html_join("", '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>', bars)
    return format_html('<svg class="chart" role="img" aria-label="{}" width="{}" height="{}" viewBox="0 0 {} {}" '
                       'xmlns="http://www.w3.org/2000/svg"><line x1="0" y1="{}" x2="{}" y2="{}" stroke="#ccc"/>{}</svg>',
                       title, width, height, width, height, height - 0.5, width, height - 0.5, body or mark_safe(""))


def _fmt(value: float) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.1f}"
    return f"{int(value)}"
