"""Invented words: neither in the training text nor in the dictionary (a tiny one built here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.invented import InventedWords


@pytest.fixture
def dictionary(tmp_path: Path) -> Path:
    (tmp_path / "tiny.aff").write_text("SET UTF-8\nSFX S Y 1\nSFX S 0 s [^s]\n", encoding="utf-8")
    (tmp_path / "tiny.dic").write_text("3\ncasa/S\nbonito\nSantiago\n", encoding="utf-8")
    return tmp_path / "tiny"


def test_a_word_is_invented_only_when_neither_text_nor_dictionary_knows_it(dictionary: Path) -> None:
    assert InventedWords.available(dictionary) == ""
    check = InventedWords(["Vamos con todo en Temuco"], dictionary)
    assert check.words("Casas bonito en TEMUCO, vamos") == []  # affixed, any case, trained
    assert check.words("Santiago veraexca @enfocotico #Trulmapa 2017abc http://x.cl enfocótico") == [
        "veraexca", "enfocótico"]
    assert check.share(["casa bonito", "casa veraexca", "vamos", "zzz"]) == 0.5


def test_a_missing_dictionary_is_said_in_one_line(tmp_path: Path) -> None:
    assert "hunspell-es" in InventedWords.available(tmp_path / "none")

