"""Spanish sentiment for tweets: pysentimiento when installed, else a small offline lexicon.

The thesis labelled sentiment with a cloud service (POSITIVE, NEGATIVE, NEUTRAL, MIXED). Nothing
like it ships on PyPI without downloading weights, so the default is a lexicon of word stems
written for Chilean political tweets, with negation and emoji handling. Its accuracy, measured on
a hand-labelled sample, is in docs/training.md (``python -m training.sentiment_check``).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Protocol

POSITIVE = "POSITIVE"
NEGATIVE = "NEGATIVE"
NEUTRAL = "NEUTRAL"
MIXED = "MIXED"

# Stems (accents stripped, lower case): a word counts when it starts with one of them.
POSITIVE_STEMS = (
    "abraz", "acompañ", "agradec", "alegr", "amor", "animo", "apoy", "avanc", "avanz", "bellez",
    "bendic", "bien", "bienven", "buen", "cariñ", "celebr", "compromet", "confianz", "construi",
    "construy", "contento", "cumpl", "defend", "digna", "digno", "emocion", "encant", "entusiasm",
    "esperanz", "excelent", "exito", "exitos", "feliz", "felic", "fortalec", "fraterno", "fuerza",
    "ganar", "ganamos", "genial", "gracias", "gran", "grande", "honor", "ilusion", "importante",
    "increible", "inspir", "juntos", "justicia", "lindo", "linda", "logr", "mejor", "merecid",
    "orgull", "oportunidad", "paz", "positiv", "progres", "recuper", "reconoc", "saludo", "solidar",
    "triunf", "unid", "valient", "vamos", "victori", "fuerte", "abrazo", "admir", "agrad",
    "exquisit", "maravill", "bonit", "hermos", "feliciz", "exitoso", "garantiz", "segur",
    "proteg", "gratuit", "bienestar", "creer", "creemos", "sueñ", "respald", "sum", "unir",
)
NEGATIVE_STEMS = (
    "abandon", "abus", "agresi", "amenaz", "angusti", "asesin", "atac", "atropell", "mentir",
    "burl", "caos", "castig", "catastrof", "cobard", "colus", "conden", "conflict", "contamin",
    "corrup", "crimen", "crisis", "critic", "crueld", "culpa", "daño", "delincu", "delit",
    "denunci", "derrot", "desastr", "descaro", "desigual", "desempleo", "desgraci", "despid",
    "destru", "dificil", "discrimin", "dolor", "engañ", "enoj", "error", "escandal", "explot",
    "fallec", "fracas", "fraude", "grave", "guerra", "herid", "horror", "humill", "ilegal",
    "impunid", "indign", "injust", "insegur", "lament", "lucro", "mal", "maltrat", "mentira",
    "miedo", "miseri", "muert", "murio", "murieron", "odio", "peligr", "peor", "perd", "pesar",
    "pobreza", "preocup", "problema", "protest", "repudi", "riesgo", "robo", "rob", "sufr",
    "terribl", "terror", "trist", "tragedi", "vergüenz", "verguenz", "violen", "victim",
    "abusiv", "negligen", "vulner", "desprecio", "irrespons", "inaceptabl", "lamentabl",
    "deplorabl", "nefast", "fatal", "pesim", "fals", "manipul", "atentad", "sirvient",
    "ataque", "estafa", "saque", "clientel", "privilegi", "precari", "deud", "inutil",
)
# Words that turn the next two words' polarity around.
NEGATIONS = frozenset({"no", "nunca", "jamas", "ni", "sin", "tampoco", "nadie", "nada"})
# Stems that look polar but are not in these tweets (e.g. "mal" vs "malla", "sum" vs "sumario").
NOT_POLAR = frozenset({
    "malla", "maleta", "bienes", "mejorar", "sumario", "suma", "segundo", "segunda", "perdon",
    "grandes", "sumo", "sumamos", "critica", "criticas", "fuerzas", "problemas",
})
POSITIVE_EMOJI = frozenset("😀😃😄😁😊🙂😍🥰😘🤗👏🙌💪❤💙💚💛🧡💜👍✌🎉🇨🇱✨🙏")
NEGATIVE_EMOJI = frozenset("😠😡🤬😢😭😞😔😟☹🙁💔👎😤😒😱")
TOKEN = re.compile(r"[^\W\d_]+", re.UNICODE)


def fold(text: str) -> str:
    """Lower case without accents (ñ kept), so stems match however the tweet was typed."""
    text = text.lower().replace("ñ", "\0")
    text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    return text.replace("\0", "ñ")


def _stem_match(word: str, stems: tuple[str, ...]) -> bool:
    return word not in NOT_POLAR and any(word.startswith(s) for s in stems)


_POS = tuple(fold(s) for s in POSITIVE_STEMS)
_NEG = tuple(fold(s) for s in NEGATIVE_STEMS)


class SentimentAnnotator(Protocol):
    name: str

    def __call__(self, texts: list[str]) -> list[str]: ...


class LexiconSentiment:
    """Counts positive and negative stems (negation flips the next two words) and emoji.

    Both present with neither dominating (ratio under ``mixed_ratio``) → MIXED; none → NEUTRAL.
    """

    name = "lexicon"

    def __init__(self, mixed_ratio: float = 2.0) -> None:
        self.mixed_ratio = mixed_ratio

    def scores(self, text: str) -> tuple[int, int]:
        pos = sum(ch in POSITIVE_EMOJI for ch in text)
        neg = sum(ch in NEGATIVE_EMOJI for ch in text)
        flip = 0
        for word in TOKEN.findall(fold(text)):
            if word in NEGATIONS:
                flip = 2
                continue
            polarity = 1 if _stem_match(word, _POS) else -1 if _stem_match(word, _NEG) else 0
            if flip:
                polarity, flip = -polarity, flip - 1
            pos += polarity > 0
            neg += polarity < 0
        return pos, neg

    def label(self, text: str) -> str:
        pos, neg = self.scores(text)
        if not pos and not neg:
            return NEUTRAL
        if pos and neg and max(pos, neg) < self.mixed_ratio * min(pos, neg):
            return MIXED
        return POSITIVE if pos > neg else NEGATIVE

    def __call__(self, texts: list[str]) -> list[str]:
        return [self.label(t) for t in texts]


class PysentimientoSentiment:
    """pysentimiento's Spanish model (POS/NEG/NEU); MIXED when the top two are close."""

    name = "pysentimiento"

    def __init__(self, margin: float = 0.15) -> None:
        from pysentimiento import create_analyzer

        self.analyzer = create_analyzer(task="sentiment", lang="es")
        self.margin = margin

    def __call__(self, texts: list[str]) -> list[str]:
        labels = {"POS": POSITIVE, "NEG": NEGATIVE, "NEU": NEUTRAL}
        out = []
        for result in self.analyzer.predict(texts):
            probas = result.probas
            if probas.get("POS", 0) > 0.3 and probas.get("NEG", 0) > 0.3 and abs(
                probas["POS"] - probas["NEG"]
            ) < self.margin:
                out.append(MIXED)
            else:
                out.append(labels[result.output])
        return out


def make_sentiment(name: str = "auto") -> SentimentAnnotator:
    """``lexicon``, ``pysentimiento``, or ``auto`` (pysentimiento when installed and loadable)."""
    if name in ("auto", "pysentimiento"):
        try:
            return PysentimientoSentiment()
        except Exception:
            if name == "pysentimiento":
                raise
    if name in ("auto", "lexicon"):
        return LexiconSentiment()
    raise ValueError(f"unknown sentiment annotator {name!r} (auto, lexicon, pysentimiento)")
