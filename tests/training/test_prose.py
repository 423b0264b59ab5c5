"""Spanish prose out of unpacked Debian packages: what a paragraph keeps and what it loses."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from training.errors import InputError
from training.prose import troff_paragraphs, write_prose

SENTENCE = "El programa guarda los cambios en el archivo que usted eligió antes de cerrar la ventana."


def test_manual_pages_keep_running_text_and_lose_macros_and_fonts() -> None:
    page = ".TH LS 1\n.SH DESCRIPCIÓN\nMuestra \\fBinformación\\fR sobre los\narchivos.\n.PP\nOtro párrafo."
    assert troff_paragraphs(page) == ["Muestra información sobre los archivos.", "Otro párrafo."]


def test_write_prose_keeps_spanish_sentences_once_and_drops_menus_and_english(tmp_path: Path) -> None:
    unpacked = tmp_path / "unpacked"
    html = unpacked / "usr/share/doc/ayuda-es/html"
    html.mkdir(parents=True)
    (html / "a.html").write_text(f"<p>{SENTENCE}</p><p>Archivo - Abrir - Guardar</p>", encoding="utf-8")
    (html / "b.html").write_text(
        f"<p>{SENTENCE}</p><p>The program saves your changes to the file you chose before.</p>", encoding="utf-8")
    man = unpacked / "usr/share/man/es/man1"
    man.mkdir(parents=True)
    (man / "ls.1.gz").write_bytes(gzip.compress(
        b".SH DESCRIPCION\nLa orden muestra los archivos de la carpeta en el orden que usted pida.\n"))
    out = tmp_path / "prose.txt"
    assert write_prose([unpacked], out) == {"paragraphs": 2, "words": 16 + 14}
    assert out.read_text(encoding="utf-8").splitlines() == [
        SENTENCE, "La orden muestra los archivos de la carpeta en el orden que usted pida."]


def test_a_folder_without_prose_is_refused(tmp_path: Path) -> None:
    (tmp_path / "vacio").mkdir()
    with pytest.raises(InputError, match="no prose"):
        write_prose([tmp_path / "vacio"], tmp_path / "prose.txt")
    with pytest.raises(InputError, match="no such folder"):
        write_prose([tmp_path / "missing"], tmp_path / "prose.txt")
