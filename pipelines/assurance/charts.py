"""Inline SVG charts for the assurance report: no JavaScript, no CDN, same input -> same bytes."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from html import escape

from pipelines.assurance.display import amount_text

PALETTE = ("#0b5394", "#38761d", "#b45f06", "#741b47", "#134f5c", "#7f6000", "#3d85c6", "#6aa84f")


def _fmt(x: float) -> str:
    return f"{x:.1f}"


def daily_volume_svg(series: dict[str, list[tuple[date, int]]], days: list[date],
                     marks: list[tuple[str, date, str]], width: int = 900, height: int = 300) -> str:
    """One line per source over the period's days; ``marks`` are (source, day, kind) with kind
    ``gap`` (missing file / quiet day, red) or ``anomaly`` (hourly alert, orange)."""
    left, right, top, bottom = 60, 150, 20, 40
    pw, ph = width - left - right, height - top - bottom
    peak = max([v for pts in series.values() for _, v in pts] + [1])
    n = max(len(days) - 1, 1)
    index = {d: i for i, d in enumerate(days)}

    def xy(d: date, v: float) -> tuple[float, float]:
        return left + pw * index[d] / n, top + ph * (1 - v / peak)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
           f'height="{height}" role="img" aria-label="Daily records per source">',
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ccc"/>']
    for k in range(5):
        v = peak * k / 4
        y = top + ph * (1 - k / 4)
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{_fmt(y)}" y2="{_fmt(y)}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{left - 6}" y="{_fmt(y + 4)}" font-size="10" text-anchor="end">{int(v)}</text>')
    for i, d in enumerate(days):
        if i % 5 == 0 or i == len(days) - 1:
            x = left + pw * i / n
            out.append(f'<text x="{_fmt(x)}" y="{top + ph + 16}" font-size="10" text-anchor="middle">'
                       f'{d.strftime("%d %b")}</text>')
    for s_i, (source, pts) in enumerate(sorted(series.items())):
        color = PALETTE[s_i % len(PALETTE)]
        values = dict(pts)
        path = " ".join(f"{'M' if j == 0 else 'L'}{_fmt(x)},{_fmt(y)}"
                        for j, (x, y) in enumerate(xy(d, values.get(d, 0)) for d in days))
        out.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="1.6"/>')
        ly = top + 14 + 16 * s_i
        out.append(f'<rect x="{left + pw + 12}" y="{ly - 8}" width="10" height="10" fill="{color}"/>')
        out.append(f'<text x="{left + pw + 28}" y="{ly + 1}" font-size="11">{escape(source)}</text>')
        for m_source, day, kind in marks:
            if m_source != source or day not in index:
                continue
            x, y = xy(day, values.get(day, 0))
            if kind == "gap":
                out.append(f'<circle cx="{_fmt(x)}" cy="{_fmt(y)}" r="5" fill="none" stroke="#cc0000" '
                           f'stroke-width="2"><title>{escape(source)} {day}: missing file or quiet day</title></circle>')
            else:
                out.append(f'<path d="M{_fmt(x)},{_fmt(y - 7)} L{_fmt(x - 6)},{_fmt(y + 4)} L{_fmt(x + 6)},{_fmt(y + 4)} Z"'
                           f' fill="#e69138"><title>{escape(source)} {day}: volume anomaly</title></path>')
    legend_y = top + 14 + 16 * len(series) + 8
    out.append(f'<circle cx="{left + pw + 17}" cy="{legend_y}" r="5" fill="none" stroke="#cc0000" stroke-width="2"/>'
               f'<text x="{left + pw + 28}" y="{legend_y + 4}" font-size="11">gap / quiet</text>')
    out.append(f'<path d="M{left + pw + 17},{legend_y + 11} L{left + pw + 11},{legend_y + 22} '
               f'L{left + pw + 23},{legend_y + 22} Z" fill="#e69138"/>'
               f'<text x="{left + pw + 28}" y="{legend_y + 21}" font-size="11">anomaly</text>')
    out.append("</svg>")
    return "\n".join(out)


def leakage_svg(bars: list[tuple[str, Decimal]], width: int = 900, bar_h: int = 22) -> str:
    """Horizontal bars: value in EUR per control (leakage and suspense)."""
    left, right = 330, 110
    height = 20 + bar_h * max(len(bars), 1) + 10
    peak = max([float(v) for _, v in bars] + [0.01])
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
           f'height="{height}" role="img" aria-label="Leakage by control">']
    for i, (label, value) in enumerate(bars):
        y = 10 + i * bar_h
        w = (width - left - right) * float(value) / peak
        color = "#cc0000" if value > 0 else "#93c47d"
        out.append(f'<text x="{left - 8}" y="{y + bar_h / 2 + 4}" font-size="11" text-anchor="end">{escape(label)}</text>')
        out.append(f'<rect x="{left}" y="{y + 3}" width="{_fmt(max(w, 1.0))}" height="{bar_h - 6}" fill="{color}"/>')
        out.append(f'<text x="{_fmt(left + max(w, 1.0) + 6)}" y="{y + bar_h / 2 + 4}" font-size="11">'
                   f'{amount_text(value)}</text>')
    out.append("</svg>")
    return "\n".join(out)
