"""PDFs as the tests read them: pages, their text, and a page as a PNG (pypdfium2: PDFium,
the renderer of Chromium, from PyPI, so no Debian poppler)."""

import re
from pathlib import Path

import pypdfium2 as pdfium


def pdf_texts(content: bytes) -> list[str]:
    """Each page's text, its lines and spaces run together as one line of words."""
    document = pdfium.PdfDocument(content)
    try:
        return [
            re.sub(r"\s+", " ", document[i].get_textpage().get_text_range()).strip()
            for i in range(len(document))
        ]
    finally:
        document.close()


def save_page_png(content: bytes, path: Path, page: int = 0) -> tuple[int, int]:
    """Page `page` at 150 dpi as a PNG; returns its size in pixels."""
    document = pdfium.PdfDocument(content)
    try:
        image = document[page].render(scale=150 / 72).to_pil()
        image.save(path)
        return image.size
    finally:
        document.close()


def page_size_mm(content: bytes) -> tuple[float, float]:
    document = pdfium.PdfDocument(content)
    try:
        width, height = document[0].get_size()
        return round(width * 25.4 / 72, 1), round(height * 25.4 / 72, 1)
    finally:
        document.close()
