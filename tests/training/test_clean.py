from training.clean import CleanStats, clean_text, clean_tweets, is_retweet


def test_truncated_tail_and_links_go_mentions_stay() -> None:
    text = "Felicitaciones a @CarolinaLeitao por su reconocimiento, gran lidera… https://t.co/8VC9v2SSb7"
    assert clean_text(text) == "Felicitaciones a @CarolinaLeitao por su reconocimiento, gran"
    assert clean_text("Mira esto https://t.co/abc y esto www.ejemplo.cl hoy") == "Mira esto y esto hoy"
    assert clean_text("Salud &amp; educación\n\nya") == "Salud & educación ya"


def test_retweets_are_recognised() -> None:
    assert is_retweet("RT @alguien: hola")
    assert not is_retweet("Hoy RT @alguien dijo algo")


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
    assert [i for i, _ in kept] == [2, 5]
    assert (stats.retweets, stats.short, stats.duplicates, stats.kept) == (1, 1, 2, 2)
