"""CSV and PDF statement per partner (Jinja2 + WeasyPrint, only the project's own template)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipelines.settlement.statements import statement_csv

TEMPLATES = Path(__file__).resolve().parents[2] / "invoice_templates" / "settlement"


def _env():  # noqa: ANN202 - jinja2 Environment
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    return Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html", "j2"]),
                       undefined=StrictUndefined)


def _text(value: object, places: int | None = None) -> str:
    if value is None:
        return ""
    return f"{value:.{places}f}" if places is not None else str(value)


def render_statement_html(statement: dict, lines: pl.DataFrame) -> str:
    """HTML of one partner statement (autoescaped)."""
    rows = [{**r, "minutes_text": _text(r["minutes"], 2), "basis_text": _text(r["basis_amount"], 2),
             "share_text": _text(r["share_pct"], 2), "fx_rate_text": _text(r["fx_rate"], 6)}
            for r in lines.iter_rows(named=True)]
    st = {**statement, "net_abs": abs(statement["net_eur"])}
    return _env().get_template("statement.html.j2").render(st=st, lines=rows)


def render_pdf(html: str) -> bytes:
    from weasyprint import HTML

    return HTML(string=html, base_url=str(TEMPLATES)).write_pdf()


def write_documents(out_dir: Path, lines: pl.DataFrame, totals: pl.DataFrame) -> list[str]:
    """Write ``<type>_<partner>.csv`` and ``.pdf`` per statement; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for st in totals.iter_rows(named=True):
        mine = lines.filter(pl.col("statement_id") == st["statement_id"])
        stem = f"{st['partner_type']}_{st['partner_id']}"   # not with_suffix: partner "A.B" would become "A.csv"
        if "/" in stem or "\\" in stem or stem.startswith("."):
            raise ValueError(f"statement file name {stem!r} would leave {out_dir}: fix the partner id")
        csv_path, pdf_path = out_dir / f"{stem}.csv", out_dir / f"{stem}.pdf"
        csv_path.write_bytes(statement_csv(mine))
        pdf_path.write_bytes(render_pdf(render_statement_html(st, mine)))
        written += [str(csv_path), str(pdf_path)]
    return written
