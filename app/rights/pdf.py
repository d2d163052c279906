"""A letter's HTML printed to PDF by headless chromium (the Debian package the browser tests already install:
offline, and the PDF is exactly the HTML page the dashboard shows), and its page count read from the file.

CREDIT_CHROMIUM names the program when it is not `chromium` on the PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from app.errors import CreditError

TIMEOUT_S = 120
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-pdf-header-footer",
)


class PdfError(CreditError, RuntimeError):
    pass


def chromium() -> str:
    program = os.environ.get("CREDIT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not program:
        raise PdfError("printing a PDF needs chromium (Debian: apt-get install chromium; or set CREDIT_CHROMIUM)")
    return program


def html_to_pdf(html: str) -> bytes:
    """The PDF bytes of one HTML page (A4 from the page's own @page rule)."""
    with tempfile.TemporaryDirectory(prefix="credit-letter-") as tmp:
        src, out = Path(tmp) / "letter.html", Path(tmp) / "letter.pdf"
        src.write_text(html, encoding="utf-8")
        cmd = [chromium(), *FLAGS, f"--user-data-dir={tmp}/profile", f"--print-to-pdf={out}", src.as_uri()]
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as exc:
            raise PdfError(f"chromium did not print the letter within {TIMEOUT_S} s") from exc
        if done.returncode != 0 or not out.is_file():
            tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
            raise PdfError(f"chromium could not print the letter (exit {done.returncode}): {' | '.join(tail)}")
        return out.read_bytes()


def page_count(pdf: bytes) -> int:
    """Pages of a PDF: its /Type /Page objects (chromium writes them uncompressed)."""
    if not pdf.startswith(b"%PDF-"):
        raise PdfError("not a PDF")
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf))
