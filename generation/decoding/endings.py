"""Whether a tweet stops mid-sentence: one rule for cleaning, ranking and evaluation.

A reader spots a cut tweet at once, by its last word: a comma, or a word that cannot close a
Spanish sentence (an article, a preposition, a conjunction, a possessive...). The same test
decides which training tweets may teach an ending (``training/clean.py``), penalises candidates
that stop short (``generation/decoding/ranking.py``) and counts them in ``politico-train evaluate``, so
the three always agree on what "mid-sentence" means.
"""

from __future__ import annotations

import re

#: Words after which a Spanish sentence cannot end.
OPEN_WORDS = frozenset((
    "a", "al", "ante", "con", "contra", "de", "del", "desde", "durante", "en", "entre", "hacia",
    "hasta", "mediante", "para", "por", "según", "sin", "sobre", "tras", "vía", "y", "e", "o", "u",
    "ni", "que", "pero", "sino", "aunque", "porque", "pues", "como", "cuando", "donde", "si", "el",
    "la", "los", "las", "lo", "un", "una", "unos", "unas", "este", "esta", "estos", "estas", "ese",
    "esa", "esos", "esas", "aquel", "aquella", "aquellos", "aquellas", "mi", "mis", "tu", "tus",
    "su", "sus", "nuestro", "nuestra", "nuestros", "nuestras", "vuestro", "vuestra", "vuestros",
    "vuestras", "cuyo", "cuya", "cuyos", "cuyas", "cada", "muy", "tan", "se", "me", "te", "le",
    "les", "nos", "os",
))

#: Characters after which a sentence is still open.
OPEN_MARKS = frozenset(",;:-–—(«“\"'¿¡/")
LAST_WORD = re.compile(r"([^\W\d_]+)$")


def ends_mid_sentence(text: str) -> bool:
    """True when ``text`` stops on an opening mark or on a word that cannot end a sentence.

    A hashtag, a mention, an emoji or a closing mark at the end counts as a complete tweet:
    politicians close tweets that way.
    """
    text = text.strip()
    if not text:
        return True
    if text[-1] in OPEN_MARKS:
        return True
    last_token = text.split()[-1]
    if last_token[0] in "#@":
        return False
    if not last_token[-1].isalpha():
        return False  # a closing mark, a digit or an emoji
    match = LAST_WORD.search(last_token)
    return bool(match) and match.group(1).lower() in OPEN_WORDS
