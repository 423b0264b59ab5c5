"""``prose``: Spanish running text out of unpacked Debian packages, for pretraining.

Tweets alone are too little Spanish for a base model (about 2 M tokens). Debian ships Spanish
prose under free licences: proverbs and quotes (``fortunes-es``), manual pages (``manpages-es``),
the LibreOffice help (``libreoffice-help-es``), the Debian Reference and the New Maintainer's
Guide (``debian-reference-es``, ``maint-guide-es``). ``training/recipes/demo.sh`` downloads and
unpacks them; this step walks the unpacked tree and writes one paragraph a line.

Only paragraphs that read as sentences are kept (enough words, mostly letters, at least one
full stop), so menus, code listings and option tables do not teach the model to write them.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

from generation.decoding.endings import OPEN_WORDS
from training.errors import InputError

SPACES = re.compile(r"\s+")
TROFF_FONT = re.compile(r"\\f(?:\[[A-Z]*\]|\(..|.)")
TROFF_ESCAPE = re.compile(r"\\(?:\(..|\[[^]]*\]|\*\(..|\*.|[-&|^ e0])")
LETTERS = re.compile(r"[^\W\d_]", re.UNICODE)
#: Tags whose end closes a paragraph of text.
BLOCKS = frozenset(["p", "li", "dd", "dt", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "div", "pre", "title", "caption", "blockquote"])
SKIPPED = frozenset(("script", "style", "pre", "code", "head"))


class _Paragraphs(HTMLParser):
    """Text of an HTML page, cut at block elements; scripts, styles and code left out."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[str] = []
        self.current: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in SKIPPED:
            self.skipping += 1
        elif tag in BLOCKS or tag == "br":
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag in BLOCKS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.current.append(data)

    def _flush(self) -> None:
        if self.current:
            self.paragraphs.append("".join(self.current))
            self.current = []


def html_paragraphs(text: str) -> list[str]:
    parser = _Paragraphs()
    parser.feed(text)
    parser.close()
    parser._flush()
    return parser.paragraphs


def troff_paragraphs(text: str) -> list[str]:
    """Running text of a manual page: macro lines end paragraphs, font escapes go."""
    paragraphs, current = [], []
    for line in text.splitlines():
        if line.startswith((".", "'")):
            if current:
                paragraphs.append(" ".join(current))
                current = []
            continue
        current.append(TROFF_ESCAPE.sub(" ", TROFF_FONT.sub("", line)))
    if current:
        paragraphs.append(" ".join(current))
    return paragraphs


def fortunes(text: str) -> list[str]:
    return [chunk.replace("\n", " ") for chunk in re.split(r"^%\s*$", text, flags=re.M)]


def reads_as_prose(paragraph: str, min_words: int) -> bool:
    """Enough words, mostly letters, a sentence end and Spanish function words: not a menu, a
    listing or a paragraph a translation left in English."""
    words = paragraph.split()
    if len(words) < min_words or not re.search(r"[.!?]", paragraph):
        return False
    letters = len(LETTERS.findall(paragraph))
    spanish = sum(w.lower() in OPEN_WORDS for w in words)
    return letters / max(1, len(paragraph.replace(" ", ""))) > 0.8 and spanish / len(words) > 0.2


def paragraphs_of(path: Path) -> list[str]:
    """The paragraphs of one file, by its kind; [] for files that hold no prose."""
    name = path.name
    if name.endswith((".html", ".htm")):
        return html_paragraphs(path.read_text(encoding="utf-8", errors="replace"))
    if "/man/" in path.as_posix() and name.endswith(".gz"):
        return troff_paragraphs(gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace"))
    if "/fortunes/" in path.as_posix() and not name.endswith(".dat"):
        # fortunes-es ships each file twice (.u8 and plain); both are UTF-8 and deduplicated below.
        return fortunes(path.read_text(encoding="utf-8", errors="replace"))
    return []


def iter_prose(roots: list[Path], min_words: int = 8) -> Iterator[str]:
    """Distinct paragraphs that read as prose, in a stable (sorted path) order."""
    seen: set[str] = set()
    for root in roots:
        if not root.is_dir():
            raise InputError(f"{root}: no such folder (unpack the packages first)")
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            for paragraph in paragraphs_of(path):
                text = SPACES.sub(" ", paragraph).strip()
                if text not in seen and reads_as_prose(text, min_words):
                    seen.add(text)
                    yield text


def write_prose(roots: list[Path], out: Path, min_words: int = 8) -> dict[str, int]:
    """Write the paragraphs to ``out``, one a line; returns how many and how many words."""
    out.parent.mkdir(parents=True, exist_ok=True)
    paragraphs = words = 0
    with out.open("w", encoding="utf-8") as handle:
        for text in iter_prose(roots, min_words):
            handle.write(text + "\n")
            paragraphs += 1
            words += len(text.split())
    if not paragraphs:
        raise InputError("no prose found under " + ", ".join(map(str, roots)))
    return {"paragraphs": paragraphs, "words": words}
