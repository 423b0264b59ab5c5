"""The style realism test: a two-sample test on surface style, blind to the words."""

from __future__ import annotations

from training.realism import style_two_sample_accuracy


def test_style_realism_tells_apart_only_what_differs_in_style() -> None:
    plain = [f"Hoy conversamos con los vecinos de la comuna número {i}." for i in range(40)]
    shouting = [f"¡¡VAMOS #CHILE {i}!! @todos @ustedes 🇨🇱🇨🇱" for i in range(40)]
    assert style_two_sample_accuracy(shouting, plain, seed=1) > 0.9
    assert style_two_sample_accuracy(plain[:20], plain[20:], seed=1) < 0.75
