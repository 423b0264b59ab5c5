"""The command language: what users type and how it is read."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.catalog import Catalog
from bot.config import load_settings
from bot.parser import ParsedCommand, ParseError, parse_command, parse_fields, with_choices
from generation.prompts import ControlFields

MAX = 300


def parse(text: str, catalog: Catalog) -> ParsedCommand:
    result = parse_command(text, catalog, MAX)
    assert isinstance(result, ParsedCommand), result
    return result


def error(text: str, catalog: Catalog) -> str:
    result = parse_command(text, catalog, MAX)
    assert isinstance(result, ParseError), result
    return result.message


def test_the_issue_example(catalog: Catalog) -> None:
    parsed = parse("/tuit derecha positivo pensiones", catalog)
    assert (parsed.command, parsed.side, parsed.sentiment, parsed.entities) == (
        "tuit", "derecha", "POSITIVE", ("pensiones",))
    assert parsed.party == parsed.coalition == ""


def test_bare_tuit_asks_for_nothing(catalog: Catalog) -> None:
    parsed = parse("/tuit", catalog)
    assert parsed.command == "tuit" and parsed.to_fields() == ControlFields()


@pytest.mark.parametrize(("text", "side"), [
    ("/tuit izquierda", "izquierda"), ("/tuit IZQUIERDA", "izquierda"), ("/tuit left", "izquierda"),
    ("/tuit izq", "izquierda"), ("/tuit oposición", "izquierda"), ("/tuit centro", "centro"),
    ("/tuit right", "derecha"), ("/tuit Derecha!", "derecha"),
])
def test_sides_and_aliases(catalog: Catalog, text: str, side: str) -> None:
    assert parse(text, catalog).side == side


@pytest.mark.parametrize(("text", "value"), [
    ("positivo", "POSITIVE"), ("positiva", "POSITIVE"), ("positive", "POSITIVE"), ("buena", "POSITIVE"),
    ("negativo", "NEGATIVE"), ("negative", "NEGATIVE"), ("malo", "NEGATIVE"),
    ("neutral", "NEUTRAL"), ("neutro", "NEUTRAL"), ("mixto", "MIXED"), ("mixed", "MIXED"), ("MIXTA", "MIXED"),
])
def test_sentiment_words_spanish_and_english(catalog: Catalog, text: str, value: str) -> None:
    assert parse(f"/tuit {text}", catalog).sentiment == value


def test_multi_word_coalition_sets_coalition_only(catalog: Catalog) -> None:
    parsed = parse("/tuit chile vamos sobre las pensiones", catalog)
    assert parsed.coalition == "Chile Vamos" and parsed.party == ""
    assert parsed.entities == ("pensiones",)  # connectors trimmed from the topic


@pytest.mark.parametrize("text", ["/tuit Nueva Mayoría", "/tuit nueva mayoria", "/tuit NM", "/tuit NUEVA  MAYORÍA"])
def test_accents_case_and_aliases_of_coalitions(catalog: Catalog, text: str) -> None:
    assert parse(text, catalog).coalition == "Nueva Mayoría"


@pytest.mark.parametrize(("text", "party", "coalition", "side"), [
    ("/tuit UDI", "UDI", "Chile Vamos", "derecha"),
    ("/tuit renovación nacional", "RN", "Chile Vamos", "derecha"),
    ("/tuit piñera", "IND-RN", "Chile Vamos", "derecha"),
    ("/tuit pinera", "IND-RN", "Chile Vamos", "derecha"),
    ("/tuit ind-rn", "IND-RN", "Chile Vamos", "derecha"),
    ("/tuit evopoli", "Evópoli", "Chile Vamos", "derecha"),
    ("/tuit democracia cristiana", "PDC", "Convergencia Democrática", "centro"),
])
def test_party_names_imply_coalition_and_side(catalog: Catalog, text: str, party: str, coalition: str, side: str) -> None:
    parsed = parse(text, catalog)
    assert (parsed.party, parsed.coalition, parsed.side) == (party, coalition, side)


@pytest.mark.parametrize(("typed", "field", "value"), [
    ("izquirda", "side", "izquierda"), ("izqierda", "side", "izquierda"), ("derecah", "side", "derecha"),
    ("positvo", "sentiment", "POSITIVE"), ("negatvo", "sentiment", "NEGATIVE"),
    ("comunsta", "party", "PC"),
])
def test_small_typos_are_forgiven_and_reported(catalog: Catalog, typed: str, field: str, value: str) -> None:
    parsed = parse(f"/tuit {typed}", catalog)
    assert getattr(parsed, field) == value
    assert parsed.corrections == ((typed, value),)


@pytest.mark.parametrize("word", ["derecho", "derechos", "centros", "comunismo", "posiciones", "izquierdos"])
def test_real_words_near_names_stay_topic(catalog: Catalog, word: str) -> None:
    parsed = parse(f"/tuit {word}", catalog)
    assert parsed.entities == (word,) and parsed.side == parsed.party == parsed.sentiment == ""


def test_hashtags_mentions_and_phrases(catalog: Catalog) -> None:
    parsed = parse('/tuit #Pensiones @CarolinaLeitao "más seguridad" carabineros #FueraAFP,', catalog)
    assert parsed.hashtags == ("Pensiones", "FueraAFP")
    assert parsed.entities == ("@CarolinaLeitao", "carabineros")
    assert parsed.phrases == ("más seguridad",)
    fields = parsed.to_fields()
    assert fields.frases == ("más seguridad",) and fields.hashtags == ("Pensiones", "FueraAFP")


def test_typographic_and_unclosed_quotes(catalog: Catalog) -> None:
    assert parse("/tuit “hola mundo” positivo", catalog).phrases == ("hola mundo",)
    assert parse("/tuit «otra frase»", catalog).phrases == ("otra frase",)
    assert parse('/tuit derecha "sin cerrar', catalog).phrases == ("sin cerrar",)


def test_explicit_fields(catalog: Catalog) -> None:
    parsed = parse('/tuit partido=UDI sentimiento=negativo tema=salud,vivienda hashtags=#a,b frases="x y"', catalog)
    assert (parsed.party, parsed.coalition, parsed.side, parsed.sentiment) == ("UDI", "Chile Vamos", "derecha", "NEGATIVE")
    assert parsed.entities == ("salud", "vivienda") and parsed.hashtags == ("a", "b") and parsed.phrases == ("x y",)


def test_explicit_fields_english_keys_accents_and_multi_word_values(catalog: Catalog) -> None:
    parsed = parse("/tuit coalición=chile vamos side=right party=rn", catalog)
    assert (parsed.coalition, parsed.side, parsed.party) == ("Chile Vamos", "derecha", "RN")
    assert parse('/tuit coalicion="Frente Amplio"', catalog).coalition == "Frente Amplio"


def test_only_words_before_equals_are_fields(catalog: Catalog) -> None:
    parsed = parse("/tuit derecha https://x.cl/?a=b", catalog)
    assert parsed.side == "derecha" and parsed.entities == ("https://x.cl/?a=b",)


def test_names_that_disagree_become_topic(catalog: Catalog) -> None:
    parsed = parse("/tuit derecha negativo frente amplio", catalog)
    assert parsed.side == "derecha" and parsed.coalition == "" and parsed.entities == ("frente amplio",)
    # "país" is also a party (PAIS, izquierda): a side named anywhere wins over it.
    parsed = parse("/tuit el país necesita orden derecha", catalog)
    assert parsed.side == "derecha" and parsed.party == "" and parsed.entities == ("país necesita orden",)


def test_explicit_field_wins_over_loose_word(catalog: Catalog) -> None:
    parsed = parse("/tuit izquierda partido=UDI", catalog)
    assert parsed.party == "UDI" and parsed.side == "derecha" and parsed.entities == ("izquierda",)


@pytest.mark.parametrize(("text", "needle"), [
    ("/tuit partido=XYZ", "No conozco el partido «XYZ»"),
    ("/tuit partido=UDY", "¿Quisiste decir «UDI»?"),
    ("/tuit lado=arriba", "No conozco el lado «arriba»"),
    ("/tuit sentimiento=verde", "No conozco el sentimiento «verde»"),
    ("/tuit derecha empieza:", "Después de «empieza:»"),
    ("/tuit empieza: \"" + "palabra " * 12 + "\"", "comienzo del tuit es muy largo"),
    ("/tuit color=rojo", "No conozco el campo «color»"),
    ("/tuit sentimiento=", "le falta el valor"),
    ("/tuit lado=derecha partido=PAIS", "PAIS es de izquierda"),
    ("/tuit coalicion=fa partido=UDI", "UDI es de Chile Vamos"),
    ("/tuit coalicion=fa lado=derecha", "no tiene partidos de derecha"),
    ("/tuit partido=UDI partido=RN", "dos partidos"),
    ("/tuit ?!... ¡¿", "signos de puntuación"),
    ("/tuit derecha \x1b[31m", "caracteres de control"),
    ("/tuit derecha \u202eabc", "caracteres de control"),
    ("/tuit " + "palabra " * 60, "muy largo"),
])
def test_bad_input_says_what_and_how(catalog: Catalog, text: str, needle: str) -> None:
    message = error(text, catalog)
    assert needle in message
    assert len(message) < 300


def test_other_commands_and_bot_suffix(catalog: Catalog) -> None:
    assert parse("/ayuda", catalog).command == "ayuda"
    assert parse("/help", catalog).command == "ayuda"
    assert parse("/opciones", catalog).command == "opciones"
    assert parse("/options", catalog).command == "opciones"
    assert parse("/start", catalog).command == "start"
    assert parse("/otra", catalog).command == "otra"
    addressed = parse("/tuit@OtroBot derecha", catalog)
    assert (addressed.command, addressed.bot, addressed.side) == ("tuit", "OtroBot", "derecha")
    assert parse("/TUIT derecha", catalog).side == "derecha"
    assert parse("/xyz", catalog) == ParsedCommand("unknown", name="xyz")
    assert parse("hola", catalog).command == "unknown"


def test_parse_fields_reuses_the_rules(catalog: Catalog) -> None:
    parsed = parse_fields(catalog, MAX, lado="izquierda", sentimiento="positivo", tema="salud pública", partido=None)
    assert isinstance(parsed, ParsedCommand)
    assert (parsed.side, parsed.sentiment, parsed.entities) == ("izquierda", "POSITIVE", ("salud pública",))
    assert isinstance(parse_fields(catalog, MAX, partido="XYZ"), ParseError)
    assert isinstance(parse_fields(catalog, MAX, lado="derecha", partido="PAIS"), ParseError)
    assert isinstance(parse_fields(catalog, MAX, tema="x" * 400), ParseError)
    assert isinstance(parse_fields(catalog, MAX, coalition="chile vamos"), ParsedCommand)


def test_controls_round_trip_and_as_command(catalog: Catalog) -> None:
    parsed = parse('/tuit partido=UDI positivo pensiones #AFP "la frase"', catalog)
    assert ParsedCommand.from_controls(parsed.controls()).to_fields() == parsed.to_fields()
    again = parse(parsed.as_command(), catalog)
    assert again.to_fields() == parsed.to_fields()


def test_with_choices_fills_only_missing_fields(catalog: Catalog) -> None:
    parsed = with_choices(parse("/tuit UDI", catalog), party="RN", sentiment="MIXED")
    assert parsed.party == "UDI" and parsed.sentiment == "MIXED" and parsed.chosen == ("sentiment",)


_CATALOG = Catalog.from_settings(load_settings().politics)  # the repo's config.toml


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_nothing_crashes(text: str) -> None:
    for command in ("/tuit " + text, text):
        assert isinstance(parse_command(command, _CATALOG, MAX), ParsedCommand | ParseError)
