"""FEE-4.3: invoice PDFs render Chinese in any viewer: the CJK font is embedded (a subset)."""

import io

import pypdf

from billing.pdf import build_pdf


def pdf_text(pdf: bytes) -> str:
    """The text a viewer extracts from every page (needs the glyphs' Unicode mapping)."""
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)


def embedded_font_files(pdf: bytes) -> int:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    count = 0
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            for descendant in font.get_object().get("/DescendantFonts", []):
                descriptor = descendant.get_object()["/FontDescriptor"].get_object()
                count += "/FontFile2" in descriptor
            descriptor = font.get_object().get("/FontDescriptor")
            if descriptor is not None:
                count += "/FontFile2" in descriptor.get_object()
    return count


def statement() -> bytes:
    return build_pdf(
        title="增值税普通发票 星河软件服务商",
        fields=[("纳税人识别号", "91350100M000100Y43"), ("邮箱", "a@b.cn")],
        table=[["项目", "金额"], ["技术服务费", "¥1.00"]],
        footer="开放平台",
    )


def test_fee_4_3_the_cjk_font_is_embedded_and_the_text_extracts():
    pdf = statement()
    assert embedded_font_files(pdf) >= 1
    text = pdf_text(pdf)
    for phrase in ("增值税普通发票 星河软件服务商", "纳税人识别号", "技术服务费", "开放平台"):
        assert phrase in text
    assert len(pdf) < 200_000  # a subset of the glyphs used, not the whole font


def test_fee_4_3_without_a_font_file_it_falls_back_to_the_viewer_s_cid_font(settings, tmp_path):
    settings.PDF_CJK_FONT_FILE = str(tmp_path / "missing.ttc")
    pdf = statement()
    assert b"STSong-Light" in pdf and embedded_font_files(pdf) == 0
