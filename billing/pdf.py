"""Small CJK-capable PDF helper (reportlab) for invoices and statements.

Chinese text is set in a TrueType CJK font embedded in the PDF (only the glyphs used, as a
subset), so the document reads the same in any viewer: ``PDF_CJK_FONT_FILE``, else the first of
``CJK_FONT_FILES`` found (Debian's ``fonts-wqy-microhei``, which ``scripts/run`` and
``scripts/test`` install). With no such file, it falls back to reportlab's built-in CID font
``STSong-Light``: not embedded, so the viewer must supply it (Adobe's Asian font pack name).
"""

import io
from collections.abc import Sequence
from pathlib import Path

from django.conf import settings
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

CJK_FONT_FILES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
)
EMBEDDED_FONT = "PortalCJK"
CID_FONT = "STSong-Light"
_registered: dict[str, str] = {}


def cjk_font_file() -> str | None:
    """The TrueType CJK font to embed, or None (then the CID fallback)."""
    configured = getattr(settings, "PDF_CJK_FONT_FILE", "")
    for candidate in (configured,) if configured else CJK_FONT_FILES:
        if Path(candidate).is_file():
            return candidate
    return None


def _font() -> str:
    """The registered font name for the current font file (registered once per file)."""
    path = cjk_font_file()
    key = path or CID_FONT
    if key not in _registered:
        if path is None:
            pdfmetrics.registerFont(UnicodeCIDFont(CID_FONT))
            _registered[key] = CID_FONT
        else:
            name = f"{EMBEDDED_FONT}-{len(_registered)}"
            pdfmetrics.registerFont(TTFont(name, path, subfontIndex=0))
            _registered[key] = name
    return _registered[key]


def _escape(text) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def build_pdf(
    *,
    title: str,
    fields: Sequence[tuple[str, str]] = (),
    table: Sequence[Sequence[str]] | None = None,
    footer: str = "",
    author: str = "",
) -> bytes:
    """A one-section A4 document: a title, label/value pairs, an optional table (first row is
    the header) and a footer line. Every string may contain Chinese."""
    font = _font()
    h1 = ParagraphStyle("h1", fontName=font, fontSize=18, leading=24, spaceAfter=8)
    body = ParagraphStyle("body", fontName=font, fontSize=10.5, leading=15)
    small = ParagraphStyle("small", fontName=font, fontSize=8.5, leading=12, textColor=colors.grey)
    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=A4,
        title=title,
        author=author,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
    )
    story: list = [Paragraph(_escape(title), h1)]
    if fields:
        rows = [[Paragraph(_escape(k), body), Paragraph(_escape(v), body)] for k, v in fields]
        t = Table(rows, colWidths=[45 * mm, None])
        t.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("BOTTOMPADDING", (0, 0), (-1, -1), 4)]))
        story += [t, Spacer(1, 6 * mm)]
    if table:
        rows = [[Paragraph(_escape(c), body) for c in row] for row in table]
        t = Table(rows, repeatRows=1)
        t.setStyle(
            TableStyle(
                [
                    ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        story += [t, Spacer(1, 6 * mm)]
    if footer:
        story.append(Paragraph(_escape(footer), small))
    doc.build(story)
    return buf.getvalue()
