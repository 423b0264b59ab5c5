"""The tweet card: a PNG of the right shape whose bottom band carries the watermark."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from PIL import Image

from bot import card
from bot.types import Tweet

LONG = (
    "¡Hoy más que nunca! 🇨🇱💪 Las pensiones dignas son un derecho, no un privilegio. "
    "Ñuñoa, Peñalolén y Conchalí merecen más 👍🏽 #PensionesDignas " * 3
    + "Unapalabrasinespaciostanlargaquenocabeenningunalíneadeltuitynisiquieraenlasiguiente"
)


def tweet(text: str, **extra: str) -> Tweet:
    return Tweet(generation_id=42, request_id=7, text=text, seed=5, **extra)


def open_png(data: bytes) -> Image.Image:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(data))
    image.load()
    return image.convert("RGB")


def band_is_watermarked(image: Image.Image) -> bool:
    """The bottom band is the dark watermark colour with light text across its middle."""
    band = image.crop((0, image.height - card.BAND, image.width, image.height))
    colours = band.getcolors(maxcolors=1_000_000) or []
    dark = sum(n for n, c in colours if c == card.BAND_COLOUR)
    light = sum(n for n, c in colours if sum(c) > 600)
    return dark > 0.8 * band.width * band.height and light > 500


@pytest.fixture
def no_emoji_fonts(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As on a machine with DejaVu only: no colour emoji font, no symbol fallbacks."""
    card._face.cache_clear()
    card._fonts.cache_clear()
    monkeypatch.setattr(card, "COLOUR_EMOJI", ())
    monkeypatch.setattr(card, "FALLBACKS", ())
    yield
    card._face.cache_clear()
    card._fonts.cache_clear()


def test_long_text_with_emoji_and_accents_grows_the_card_and_keeps_the_watermark() -> None:
    short = open_png(card.render_card(tweet("Hola Chile", party="PDC", coalition="Convergencia Democrática")))
    long = open_png(card.render_card(tweet(LONG, party="IND-RN", coalition="Chile Vamos")))
    assert short.width == long.width == card.WIDTH
    assert long.height > short.height + 8 * card.TEXT_SIZE  # wrapped onto many lines
    assert long.height < 4000
    assert band_is_watermarked(short) and band_is_watermarked(long)


def test_text_never_spills_past_the_margins() -> None:
    image = open_png(card.render_card(tweet(LONG)))
    right_margin = image.crop((card.WIDTH - card.PAD + 8, 0, card.WIDTH, image.height - card.BAND))
    assert set(c for _, c in right_margin.getcolors(maxcolors=100_000)) == {card.BACKGROUND}


def test_the_same_generation_gets_the_same_invented_author() -> None:
    first, again = card.persona_for(tweet("x")), card.persona_for(tweet("y"))
    others = {card.persona_for(Tweet(generation_id=i, request_id=7, text="x")).name for i in range(20)}
    assert first == again
    assert first.handle.startswith("@") and first.handle[1:].isalnum()
    assert first.initials == "".join(part[0] for part in first.name.split()[:2])
    assert len(others) > 10


def test_renders_without_emoji_fonts(no_emoji_fonts: None) -> None:
    image = open_png(card.render_card(tweet("Sin fuentes de emoji 🤖🇨🇱 pero con acentos: ñandú")))
    assert image.width == card.WIDTH
    assert band_is_watermarked(image)


def test_empty_text_still_renders_a_card() -> None:
    assert band_is_watermarked(open_png(card.render_card(tweet("   "))))
