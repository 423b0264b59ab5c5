"""Annotating cleaned tweets with the thesis's context fields.

ENTIDADES, HASHTAGS, FRASES and SENTIMIENTO are read off the tweet itself, so at training time
the model sees a context that describes the text it must write; that is what later lets a user
steer a tweet with a topic word. Each annotator is pluggable: the defaults run offline with what
PyPI ships (mentions and proper-noun spans, YAKE, a lexicon), stronger ones (a spaCy Spanish
model, pysentimiento) are used when installed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from training.clean import HASHTAG, MENTION
from training.sentiment import SentimentAnnotator, make_sentiment

CAPITALISED = re.compile(r"^[A-ZÁÉÍÓÚÑÜ][\wáéíóúñü'’-]*$")
ACRONYM = re.compile(r"^[A-ZÁÉÍÓÚÑ]{2,5}$")
WORDISH = re.compile(r"(?<!\w)@\w+|[\w'’-]+|[.!?:;\"“”(),]", re.UNICODE)
SENTENCE_END = frozenset('.!?:;"“”(')
# Lower-case words allowed inside a proper-noun span ("Ministerio de Hacienda", "Puente Alto").
CONNECTORS = frozenset({"de", "del", "la", "las", "los", "y"})
SPACY_KINDS = frozenset({"PER", "LOC", "ORG", "PERSON", "GPE", "DATE"})


def _words(text: str) -> list[tuple[str, bool]]:
    """The tweet's words (mentions included, hashtags left out), each with whether it starts a
    sentence: a capital there says nothing about being a name."""
    out = []
    starts = True
    for token in WORDISH.findall(HASHTAG.sub(" . ", text)):
        if token in SENTENCE_END or token == ",":
            starts = starts or token in SENTENCE_END
            if token == ",":
                out.append((token, False))
            continue
        out.append((token, starts))
        starts = False
    return out


class EntityAnnotator(Protocol):
    name: str

    def fit(self, texts: Iterable[str]) -> None: ...

    def __call__(self, text: str) -> list[str]: ...


class HeuristicEntities:
    """Mentions plus spans of capitalised words that the corpus shows are names.

    A capitalised word is a name when the corpus writes it capitalised more often than in lower
    case: "Valparaíso" is, "Gracias" at the start of a sentence is not. Short all-caps words are
    acronyms (AFP, PDC). Fitting on the corpus first is what makes sentence starts tell apart.
    """

    name = "heuristic"

    def __init__(self, max_entities: int = 3) -> None:
        self.max_entities = max_entities
        self.upper: Counter[str] = Counter()
        self.lower: Counter[str] = Counter()

    def fit(self, texts: Iterable[str]) -> None:
        for text in texts:
            for word, starts_sentence in _words(text):
                key = word.lower()
                if word.islower():
                    self.lower[key] += 1
                elif not starts_sentence and CAPITALISED.match(word):
                    self.upper[key] += 1

    def is_name(self, word: str, shouting: bool) -> bool:
        key = word.lower()
        if ACRONYM.match(word):
            return not shouting and self.lower[key] < 3
        if not CAPITALISED.match(word) or len(word) < 3 or word.isupper():
            return False
        return self.upper[key] >= 2 and self.upper[key] > 2 * self.lower[key]

    def __call__(self, text: str) -> list[str]:
        found: list[str] = []
        span: list[str] = []

        def close() -> None:
            while span and span[-1] in CONNECTORS:
                span.pop()
            if span:
                found.append(" ".join(span))
            span.clear()

        letters = [c for c in text if c.isalpha()]
        shouting = sum(c.isupper() for c in letters) > 0.5 * max(len(letters), 1)
        for word, _ in _words(text):
            if word.startswith("@"):
                close()
                found.append(word)
            elif self.is_name(word, shouting) or (span and word in CONNECTORS):
                span.append(word)
            else:
                close()
        close()
        return list(dict.fromkeys(found))[: self.max_entities]


class SpacyEntities:
    """A spaCy Spanish pipeline's PER/LOC/ORG entities (MISC dropped, as the thesis dropped OTHER),
    plus mentions, which spaCy does not tag."""

    name = "spacy"

    def __init__(self, model: str = "es_core_news_sm", max_entities: int = 3) -> None:
        import spacy

        self.nlp = spacy.load(model, disable=["parser", "lemmatizer"])
        self.max_entities = max_entities

    def fit(self, texts: Iterable[str]) -> None:
        """Nothing to learn: the pipeline is already trained."""

    def __call__(self, text: str) -> list[str]:
        doc = self.nlp(HASHTAG.sub(" ", text))
        found = [e.text for e in doc.ents if e.label_ in SPACY_KINDS]
        found += MENTION.findall(text)
        return list(dict.fromkeys(found))[: self.max_entities]


def make_entities(name: str = "auto", max_entities: int = 3) -> EntityAnnotator:
    """``heuristic``, ``spacy`` or ``auto`` (spaCy's Spanish model when it loads)."""
    if name in ("auto", "spacy"):
        try:
            return SpacyEntities(max_entities=max_entities)
        except (ImportError, OSError):
            if name == "spacy":
                raise
    if name in ("auto", "heuristic"):
        return HeuristicEntities(max_entities)
    raise ValueError(f"unknown entity annotator {name!r} (auto, heuristic, spacy)")


class YakePhrases:
    """YAKE key phrases (statistical, offline, Spanish stop words), best first."""

    name = "yake"

    def __init__(self, top: int = 2, max_words: int = 3) -> None:
        import yake

        self.extractor = yake.KeywordExtractor(lan="es", n=max_words, top=top, dedup_lim=0.7)

    def __call__(self, text: str) -> list[str]:
        clean = MENTION.sub(" ", HASHTAG.sub(" ", text))
        return [phrase for phrase, _ in self.extractor.extract_keywords(clean)]


@dataclass
class Annotation:
    sentimiento: str
    entidades: list[str]
    hashtags: list[str]
    frases: list[str]


class Annotator:
    """All four annotators together, run over a whole corpus at once."""

    def __init__(
        self,
        sentiment: SentimentAnnotator | None = None,
        entities: EntityAnnotator | None = None,
        phrases: YakePhrases | None = None,
    ) -> None:
        self.sentiment = sentiment or make_sentiment("auto")
        self.entities = entities or make_entities("auto")
        self.phrases = phrases or YakePhrases()

    def describe(self) -> dict[str, str]:
        return {"sentiment": self.sentiment.name, "entities": self.entities.name, "phrases": "yake"}

    def annotate(self, texts: list[str], progress: bool = True) -> list[Annotation]:
        from tqdm.auto import tqdm

        self.entities.fit(texts)
        sentiments = self.sentiment(texts)
        out = []
        for text, sentiment in tqdm(
            list(zip(texts, sentiments, strict=True)), desc="anotando", disable=not progress
        ):
            entities = self.entities(text)
            taken = {e.lower() for e in entities}
            phrases = [p for p in self.phrases(text) if p.lower() not in taken]
            out.append(Annotation(sentiment, entities, HASHTAG.findall(text), phrases))
        return out
