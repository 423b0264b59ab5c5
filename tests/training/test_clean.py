from training.clean import (
    CleanStats,
    clean_tweet,
    clean_tweets,
    last_sentences,
    retweeted,
)


def test_links_and_entities_go_mentions_stay() -> None:
    assert clean_tweet("Mira esto https://t.co/abc y esto www.ejemplo.cl hoy")[0] == "Mira esto y esto hoy"
    assert clean_tweet("Salud &amp; educación\n\nya")[0] == "Salud & educación ya"
    assert clean_tweet("Gracias @CarolinaLeitao por todo.")[0] == "Gracias @CarolinaLeitao por todo."


def test_a_cut_tweet_is_trimmed_to_its_last_complete_sentence() -> None:
    raw = ("Solo esta semana hubo ataques en Santiago y quema de buses.\n\n¿Qué dice La Moneda? "
           "\n\nEl gobierno no resp… https://t.co/8VC9v2SSb7")
    assert clean_tweet(raw, 4) == (
        "Solo esta semana hubo ataques en Santiago y quema de buses. ¿Qué dice La Moneda?", True)


def test_a_cut_tweet_without_a_complete_sentence_is_kept_open() -> None:
    raw = "Felicitaciones a @CarolinaLeitao por su reconocimiento, gran lidera… https://t.co/8VC9v2SSb7"
    assert clean_tweet(raw, 4) == ("Felicitaciones a @CarolinaLeitao por su reconocimiento, gran", False)
    # Too little left before the cut: the whole cut text, open, rather than two words.
    assert clean_tweet("Hola amigos. Hoy estuvimos en la comuna de Maip… https://t.co/x", 4) == (
        "Hola amigos. Hoy estuvimos en la comuna de", False)


def test_a_tweet_left_open_by_its_link_is_marked_open() -> None:
    assert clean_tweet("Revisen la entrevista completa en https://t.co/xyz") == (
        "Revisen la entrevista completa en", False)
    assert clean_tweet("Revisen la entrevista completa https://t.co/xyz") == (
        "Revisen la entrevista completa", True)


def test_last_sentences() -> None:
    assert last_sentences("Uno. Dos tres") == "Uno."
    assert last_sentences("«Vamos!» dijo ella y") == "«Vamos!»"
    assert last_sentences("sin punto") == ""


def test_retweets_are_recognised() -> None:
    assert retweeted("RT @alguien: hola") == ("alguien", "hola")
    assert retweeted("Hoy RT @alguien dijo algo") is None


def test_clean_tweets_drops_retweets_short_and_duplicates() -> None:
    texts = [
        "RT @a: uno dos tres cuatro cinco",
        "@a @b Gracias!",
        "Hoy conversamos con los vecinos de Puente Alto",
        "hoy conversamos con los vecinos de  Puente Alto",
        "@c Hoy conversamos con los vecinos de Puente Alto",
        "Otra cosa distinta que decir hoy",
    ]
    stats = CleanStats()
    kept = list(clean_tweets(texts, 4, stats))
    assert [c.index for c in kept] == [2, 5]
    assert (stats.retweets, stats.short, stats.duplicates, stats.kept) == (1, 1, 2, 2)


def test_retweets_kept_on_request_except_of_held_out_authors() -> None:
    texts = ["RT @a: uno dos tres cuatro cinco.", "RT @Candidata: su propio tuit de campaña hoy."]
    stats = CleanStats()
    kept = list(clean_tweets(texts, 4, stats, retweets=True, skip_authors=frozenset({"candidata"})))
    assert [(c.index, c.text) for c in kept] == [(0, "uno dos tres cuatro cinco.")]
    assert stats.retweets == 1
