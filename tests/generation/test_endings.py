import pytest

from generation.decoding.endings import ends_mid_sentence


@pytest.mark.parametrize("text", [
    "Este jueves y viernes para todos! #VamosChile con tu voto y",
    "Durante estos años de trabajo,",
    "Seguimos trabajando por una",
    "Gracias a todos los que vinieron de",
    "Nos vemos en:",
    "",
])
def test_open_endings(text: str) -> None:
    assert ends_mid_sentence(text)


@pytest.mark.parametrize("text", [
    "Seguimos trabajando por Chile.",
    "Gran jornada en Temuco",
    "Vamos con todo #Pensiones",
    "Gracias @sebastianpinera",
    "¡Fuerza! 🇨🇱",
    "Nos vemos el 19 de noviembre",
    "Votemos por un Chile mejor!",
])
def test_complete_endings(text: str) -> None:
    assert not ends_mid_sentence(text)
