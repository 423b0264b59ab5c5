"""How plain words are read: the lexicon (shipped and an operator's), stems, stances, tone,
fillers, topics, the tweet's start, and what the reply says was left out."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import texts
from bot.catalog import Catalog
from bot.config import load_settings
from bot.lexicon import Lexicon, LexiconError, stems
from bot.parser import ParsedCommand, ParseError, parse_command
from generation.config import ConfigError
from tests.conftest import write_config

MAX = 300


def parse(text: str, catalog: Catalog) -> ParsedCommand:
    result = parse_command(text, catalog, MAX)
    assert isinstance(result, ParsedCommand), result
    return result


@pytest.mark.parametrize(("word", "value"), [
    ("enojadas", "NEGATIVE"), ("FURIOSOS", "NEGATIVE"), ("enojadísima", "NEGATIVE"), ("enojao", "NEGATIVE"),
    ("indignación", "NEGATIVE"), ("contentas", "POSITIVE"), ("orgullosísimo", "POSITIVE"),
    ("esperanzadas", "POSITIVE"), ("tranquila", "NEUTRAL"), ("agridulces", "MIXED"), ("pos", "POSITIVE"),
])
def test_sentiment_words_are_read_with_their_inflections(catalog: Catalog, word: str, value: str) -> None:
    parsed = parse(f"/tuit {word} salud", catalog)
    assert (parsed.sentiment, parsed.entities) == (value, ("salud",))


@pytest.mark.parametrize("topic", ["espera", "listas de espera", "motivos", "Serena", "equilibrio fiscal"])
def test_words_that_only_share_a_stem_stay_topics(catalog: Catalog, topic: str) -> None:
    parsed = parse(f"/tuit sobre {topic}", catalog)
    assert parsed.sentiment == "" and parsed.entities == (topic,)


def test_stems_cover_superlatives_and_spoken_participles() -> None:
    assert stems("enojadisimo")[-1] == stems("enojado")[0]
    assert stems("enojao")[-1] == stems("enojado")[0]
    assert stems("pensiones") == (stems("pensiones")[0],)


def test_a_stance_makes_the_name_after_it_a_topic_not_the_author(catalog: Catalog) -> None:
    against = parse("/tuit en contra de la UDI", catalog)
    assert (against.party, against.side, against.sentiment, against.entities) == ("", "", "NEGATIVE", ("UDI",))
    author = parse("/tuit de la UDI en contra del aborto", catalog)
    assert (author.party, author.sentiment, author.entities) == ("UDI", "NEGATIVE", ("aborto",))


def test_what_a_feeling_is_about_is_a_topic_not_the_author(catalog: Catalog) -> None:
    parsed = parse("/tuit piñera enojado con la oposición", catalog)
    assert (parsed.party, parsed.side, parsed.sentiment, parsed.entities) == ("IND-RN", "derecha", "NEGATIVE", ("oposición",))
    side = parse("/tuit enojado de izquierda", catalog)  # "de" says who, not about what
    assert (side.side, side.entities) == ("izquierda", ())
    assert parse("/tuit sobre el café con leche", catalog).entities == ("café con leche",)


def test_tone_descriptions_and_fillers_never_become_topics(catalog: Catalog) -> None:
    parsed = parse("/tuit porfa un tuit chistoso como kast en tono irónico sobre el congreso", catalog)
    assert (parsed.party, parsed.entities, parsed.ignored) == ("IND", ("congreso",), ("chistoso", "irónico"))
    assert parse("/tuit jajajaja algo de kast", catalog).entities == ()


def test_negation_softening_and_two_opposite_sentiments(catalog: Catalog) -> None:
    assert parse("/tuit no tan contento", catalog).sentiment == "NEGATIVE"
    assert parse("/tuit menos enojado", catalog).sentiment == "NEUTRAL"
    assert parse("/tuit feliz pero preocupado", catalog).sentiment == "MIXED"
    calm = parse("/tuit neutral y feliz", catalog)
    assert calm.sentiment == "NEUTRAL" and calm.ignored == ("feliz",)
    explicit = parse("/tuit sentimiento=positivo enojado", catalog)
    assert explicit.sentiment == "POSITIVE" and explicit.ignored == ("enojado",)


def test_a_one_sided_coalition_implies_its_side(catalog: Catalog) -> None:
    assert parse("/tuit nueva mayoría", catalog).side == "izquierda"
    assert parse("/tuit independiente", catalog).side == ""  # independents stood on both sides
    message = parse_command("/tuit coalicion=fa lado=derecha", catalog, MAX)
    assert isinstance(message, ParseError) and "no tiene partidos de derecha" in message.message


@pytest.mark.parametrize("text", [
    '/tuit derecha empieza: "Hoy en La Moneda" pensiones',
    "/tuit derecha pensiones empieza: Hoy en La Moneda",
    "/tuit derecha pensiones Empieza : Hoy en La Moneda",
    '/tuit derecha pensiones empieza="Hoy en La Moneda"',
    "/tuit derecha pensiones que empiece con «Hoy en La Moneda»",
])
def test_the_tweets_start_in_every_way_people_write_it(catalog: Catalog, text: str) -> None:
    parsed = parse(text, catalog)
    assert (parsed.start, parsed.side, parsed.entities) == ("Hoy en La Moneda", "derecha", ("pensiones",))
    assert parse(parsed.as_command(), catalog).start == "Hoy en La Moneda"


def test_a_start_word_without_its_colon_is_a_plain_word(catalog: Catalog) -> None:
    assert parse("/tuit sobre el inicio del año escolar", catalog).entities == ("inicio del año escolar",)


def test_commas_slashes_and_y_separate_topics_but_links_stay_whole(catalog: Catalog) -> None:
    assert parse("/tuit salud/educación, vivienda y transporte", catalog).entities == (
        "salud", "educación", "vivienda", "transporte")
    assert parse("/tuit derecha https://x.cl/a/b?c=d", catalog).entities == ("https://x.cl/a/b?c=d",)


def test_the_reply_says_what_was_understood_and_what_was_left_out(catalog: Catalog) -> None:
    line = texts.understood(parse('/tuit algo bacán sobre el sename empieza: "Hoy"', catalog))
    assert line == "Entendí: tema: sename · empieza: «Hoy» · no usé: «bacán»"


def test_an_operators_lexicon_adds_words_but_cannot_change_the_shipped_ones(tmp_path: Path) -> None:
    extra = tmp_path / "mis-palabras.toml"
    extra.write_text(
        '[sentiments.POSITIVE]\nwords = ["chocho"]\n'
        '[sentiments.NEGATIVE]\nexact = ["feliz"]\n'  # already positive: the shipped meaning stays
        '[fillers]\nwords = ["compadre", "kast"]\n',  # a name stays the catalogue's
        encoding="utf-8",
    )
    settings = load_settings(write_config(tmp_path, tmp_path / "no-model", '[bot]\nlexicon = "mis-palabras.toml"'))
    assert settings.bot.lexicon == str(extra)
    catalog = Catalog.from_settings(settings.politics, Lexicon.load(settings.bot.lexicon))
    parsed = parse("/tuit compadre chochas como kast sobre el metro", catalog)
    assert (parsed.sentiment, parsed.party, parsed.entities) == ("POSITIVE", "IND", ("metro",))
    assert parse("/tuit feliz", catalog).sentiment == "POSITIVE"


@pytest.mark.parametrize(("content", "needle"), [
    ("[sentiments.HAPPY]\nwords = ['x']\n", "sentiments.HAPPY"),
    ("[fillers]\nwordz = ['x']\n", "fillers.wordz: unknown key"),
    ("[fillers\n", "not valid TOML"),
])
def test_a_bad_lexicon_stops_the_start_with_one_line(tmp_path: Path, content: str, needle: str) -> None:
    (tmp_path / "malo.toml").write_text(content, encoding="utf-8")
    with pytest.raises(LexiconError, match=r"malo\.toml"):
        Lexicon.load(tmp_path / "malo.toml")
    config = write_config(tmp_path, tmp_path / "no-model", '[bot]\nlexicon = "malo.toml"')
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert "bot.lexicon" in str(caught.value) and needle in str(caught.value)
    assert "\n" not in str(caught.value)
    missing = write_config(tmp_path, tmp_path / "no-model", '[bot]\nlexicon = "no-existe.toml"')
    with pytest.raises(ConfigError, match="lexicon file not found"):
        load_settings(missing)
