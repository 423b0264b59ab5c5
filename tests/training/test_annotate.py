from training.annotate import Annotator, HeuristicEntities, YakePhrases
from training.sentiment import LexiconSentiment

# Written for this test (not from the data set): label, text.
SENTENCES = [
    ("POSITIVE", "Gracias a todos por el cariño, un abrazo grande y felicitaciones al equipo"),
    ("POSITIVE", "Feliz de celebrar este triunfo junto a ustedes 💪"),
    ("NEGATIVE", "Lamentable y grave la violencia contra carabineros, repudiamos este ataque"),
    ("NEGATIVE", "La corrupción y los abusos tienen que terminar"),
    ("NEUTRAL", "Mañana a las 10 estaremos en la radio conversando sobre el programa"),
    ("MIXED", "Lamentamos la derrota, pero gracias por el apoyo de todos"),
    ("NEGATIVE", "No es bueno lo que pasó hoy en el Congreso"),
]


def test_lexicon_labels_hand_written_sentences() -> None:
    lexicon = LexiconSentiment()
    assert lexicon([text for _, text in SENTENCES]) == [label for label, _ in SENTENCES]


def test_entities_use_corpus_capitalisation() -> None:
    corpus = [
        "Hoy estuvimos en Valparaíso con los vecinos",
        "Gracias Valparaíso por recibirnos",
        "hoy es un gran día, gracias a todos",
        "Mañana vamos a Puente Alto y luego a Valparaíso",
        "Seguimos en Puente Alto con @Vecinos",
        "Gracias a la AFP por nada",
    ]
    entities = HeuristicEntities()
    entities.fit(corpus)
    assert entities("Hoy en Valparaíso con @JuanPerez, luego Puente Alto") == ["Valparaíso", "@JuanPerez", "Puente Alto"]
    assert "Hoy" not in entities("Hoy fue un gran día")
    assert entities("GRITANDO EN MAYÚSCULAS TODO EL DÍA") == []


def test_annotator_fills_every_field() -> None:
    annotator = Annotator(LexiconSentiment(), HeuristicEntities(), YakePhrases())
    texts = ["Gracias Temuco por el apoyo a la educación pública #Educación", "En Temuco con los vecinos de siempre"]
    first = annotator.annotate(texts, progress=False)[0]
    assert first.sentimiento == "POSITIVE"
    assert first.hashtags == ["Educación"]
    assert "Temuco" in first.entidades
    assert first.frases and all(p.lower() not in {e.lower() for e in first.entidades} for p in first.frases)
