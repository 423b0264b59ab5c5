"""Raw continuations into tweets, and the reasons to reject one."""

from __future__ import annotations

import pytest

from generation.postprocess import clean, fold, is_degenerate, rejection_reason
from generation.settings import PostprocessSettings


@pytest.mark.parametrize(("raw", "tweet"), [
    ("Hola Chile<|endoftext|> basura después", "Hola Chile"),
    ("  Vamos   por\tmás  [HASHTAGS] Chile  ", "Vamos por más Chile"),
    ("[TWEET] Gracias a todos</s>sobra", "Gracias a todos"),
    ("línea uno  \n\n\n\n  línea dos", "línea uno\n\nlínea dos"),
    ("roto \ufffd y \x07 control", "roto y control"),
    ("<s>con <pad>relleno<unk>", "con relleno"),
])
def test_clean_strips_leftovers_and_tidies_whitespace(raw: str, tweet: str) -> None:
    assert clean(raw) == tweet


def test_long_text_is_cut_at_a_word_boundary() -> None:
    words = " ".join(["palabra"] * 60)  # 479 characters
    cut = clean(words, 280)
    assert len(cut) <= 280
    assert cut.split() == ["palabra"] * len(cut.split())
    assert clean("uno, dos, " + "tres " * 80, 30) == "uno, dos, tres tres tres tres"


def test_one_enormous_word_is_cut_hard() -> None:
    assert clean("a" * 500, 280) == "a" * 280


def test_short_text_is_kept_whole() -> None:
    assert clean("Exactamente así.", 16) == "Exactamente así."


SETTINGS = PostprocessSettings(min_chars=12, blocklist=["Pinochet", "tonto", "muy malo"])


@pytest.mark.parametrize(("text", "reason"), [
    ("", "empty"),
    ("   ", "empty"),
    ("Hola", "too_short"),
    ("@alguien @otro #Chile https://t.co/x !!!", "no_words"),
    ("1234 5678 9012 !!", "no_words"),
    ("jajajajajaja jaaaaaaaaaaaa ok", "degenerate"),
    ("Chile Chile Chile Chile es grande", "degenerate"),
    ("sí no sí no sí no sí no sí no sí no", "degenerate"),
    ("El legado de PINOCHÉT sigue aquí", "blocklist"),
    ("Eso fue muy   malo para todos", None),  # a phrase must match as written, not across spaces
    ("Qué gobierno más Tonto, por favor", "blocklist"),
    ("Un atontado gobierno de verdad", None),  # whole words only
    ("Gracias a todos los vecinos de Puente Alto!", None),
])
def test_rejection_reasons(text: str, reason: str | None) -> None:
    assert rejection_reason(text, SETTINGS) == reason


def test_blocklist_phrases_match_accent_and_case_insensitively() -> None:
    settings = PostprocessSettings(blocklist=["muy malo", "niño"])
    assert rejection_reason("Esto es MUY MALO para Chile", settings) == "blocklist"
    assert rejection_reason("Un NINO en la calle de Chile", settings) == "blocklist"


def test_fold_and_degeneracy_helpers() -> None:
    assert fold("Árbol ÑANDÚ") == "arbol nandu"
    assert not is_degenerate("Vamos a defender la educación pública, gratuita y de calidad en Chile.")
