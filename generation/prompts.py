"""The thesis models' prompt format, shared by generation and training.

The controlled ("contextual") model was trained on sequences made of segments written as
``" [NAME] " + value``, each tokenized on its own, with every token of a segment carrying the id
of that segment's marker as its token type (see ``shared/docs/thesis-format.md``). Generation must
rebuild exactly that layout, so both the bot and ``training/`` build sequences here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

COALICION = "[COALICION]"
PARTIDO = "[PARTIDO]"
SENTIMIENTO = "[SENTIMIENTO]"
ENTIDADES = "[ENTIDADES]"
HASHTAGS = "[HASHTAGS]"
FRASES = "[FRASES]"
TWEET = "[TWEET]"

#: Context markers in the order the thesis wrote them.
CONTEXT_MARKERS: tuple[str, ...] = (COALICION, PARTIDO, SENTIMIENTO, ENTIDADES, HASHTAGS, FRASES)
#: Every token the thesis added to the tokenizer (``[TWEET]`` doubles as BOS).
CONTROL_TOKENS: tuple[str, ...] = (*CONTEXT_MARKERS, TWEET)
SENTIMENTS: tuple[str, ...] = ("POSITIVE", "NEGATIVE", "NEUTRAL", "MIXED")
#: Sentiments a request gets at random when none is asked for (MIXED is rare in the thesis data).
RANDOM_SENTIMENTS: tuple[str, ...] = ("POSITIVE", "NEGATIVE", "NEUTRAL")
#: In generation mode the thesis filled a missing sentiment with NEUTRAL.
DEFAULT_SENTIMENT = "NEUTRAL"
#: Label id that the loss ignores (PyTorch's cross-entropy default).
IGNORE_INDEX = -100


class Tokenizer(Protocol):
    """The slice of a Hugging Face tokenizer this module needs."""

    eos_token_id: int | None

    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]: ...

    def convert_tokens_to_ids(self, tokens: str) -> int: ...


@dataclass(frozen=True)
class ControlFields:
    """What a controlled prompt says about the tweet to write.

    Empty values are left out of the prompt entirely, as in the thesis.
    """

    coalicion: str = ""
    partido: str = ""
    sentimiento: str = ""
    entidades: tuple[str, ...] = ()
    hashtags: tuple[str, ...] = ()
    frases: tuple[str, ...] = ()

    def values(self) -> dict[str, str]:
        """Marker → the value text as written after the marker ("" when absent)."""
        return {
            COALICION: self.coalicion.strip(),
            PARTIDO: self.partido.strip(),
            SENTIMIENTO: self.sentimiento.strip(),
            ENTIDADES: " ".join(e.strip() for e in self.entidades if e.strip()),
            HASHTAGS: " ".join(h.strip().lstrip("#") for h in self.hashtags if h.strip("# ")),
            FRASES: " ".join(f.strip() for f in self.frases if f.strip()),
        }

    def topics(self) -> tuple[str, ...]:
        """What the tweet is asked to name: the entities and the hashtags (written with ``#``)."""
        tags = ("#" + h.strip().lstrip("#") for h in self.hashtags if h.strip("# "))
        return (*(e.strip() for e in self.entidades if e.strip()), *tags)

    def for_generation(self) -> ControlFields:
        """The fields as the thesis sent them at generation time (sentiment defaulted)."""
        if self.sentimiento:
            return self
        return ControlFields(
            self.coalicion, self.partido, DEFAULT_SENTIMENT, self.entidades, self.hashtags, self.frases
        )


@dataclass(frozen=True)
class Segment:
    """One piece of a sequence: its text and the marker whose id every token of it carries."""

    marker: str
    text: str


def context_segments(fields: ControlFields) -> list[Segment]:
    """The context segments, in thesis order, empty ones left out."""
    return [
        Segment(marker, f" {marker} {value}")
        for marker, value in fields.values().items()
        if value
    ]


def prompt_text(fields: ControlFields, start: str = "") -> str:
    """The controlled prompt as one string (what a text-only completions server receives);
    ``start`` is the tweet's first words, written after the tweet marker."""
    segments = context_segments(fields.for_generation())
    return "".join(s.text for s in segments) + _tweet_marker().text + start.strip()


@dataclass
class Encoded:
    """Token ids with their token types and, for training, labels."""

    input_ids: list[int] = field(default_factory=list)
    token_type_ids: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)

    def extend(self, ids: Sequence[int], type_id: int, learn: bool) -> None:
        self.input_ids.extend(ids)
        self.token_type_ids.extend([type_id] * len(ids))
        self.labels.extend(ids if learn else [IGNORE_INDEX] * len(ids))


def _encode_segment(tokenizer: Tokenizer, segment: Segment) -> list[int]:
    return list(tokenizer.encode(segment.text, add_special_tokens=False))


def _tweet_marker() -> Segment:
    return Segment(TWEET, f" {TWEET} ")


def split_tweet_start(segment_text: str) -> tuple[str, str]:
    """A prompt's text segment as :func:`encode_prompt` tokenizes it, piece by piece: the tweet
    marker's (``" [TWEET] Hoy en…"``) is the marker and the tweet's start; any other is itself."""
    marker = _tweet_marker().text
    start = segment_text[len(marker):].strip() if segment_text.startswith(marker) else ""
    return (marker, start) if start else (segment_text, "")


def encode_prompt(tokenizer: Tokenizer, fields: ControlFields, start: str = "") -> Encoded:
    """Ids and token types of a generation prompt: context segments then ``" [TWEET] "``, then
    ``start`` (the tweet's first words, for the model to go on from).

    The start is tokenized on its own after the marker, exactly as a training tweet is
    (``encode_example``), so the model continues a sequence of the kind it learnt from.
    """
    out = Encoded()
    for segment in [*context_segments(fields.for_generation()), _tweet_marker()]:
        out.extend(_encode_segment(tokenizer, segment), tokenizer.convert_tokens_to_ids(segment.marker), False)
    if start.strip():
        out.extend(tokenizer.encode(start.strip(), add_special_tokens=False),
                   tokenizer.convert_tokens_to_ids(TWEET), False)
    return out


def encode_example(
    tokenizer: Tokenizer, fields: ControlFields, tweet: str, block_size: int, complete: bool = True
) -> Encoded:
    """One training sequence of the contextual model, cut to ``block_size`` tokens.

    The ``" [TWEET] "`` marker is tokenized exactly as the generation prompt ends, and the tweet
    after it on its own, so the model learns to continue the very token sequence it is given at
    generation time. Loss falls only on the tweet and its EOS (context and marker get
    ``IGNORE_INDEX``). When too long, FRASES goes first, then ENTIDADES, then the tweet is cut:
    the thesis's truncation order. An open tweet (``complete=False``: cut by the API, or left
    dangling when its link was removed) gets no EOS, so it never teaches an ending.
    """
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no EOS token")
    tweet_type = tokenizer.convert_tokens_to_ids(TWEET)
    head = _encode_segment(tokenizer, _tweet_marker())
    body = [*tokenizer.encode(tweet.strip(), add_special_tokens=False)]
    if complete:
        body.append(tokenizer.eos_token_id)
    context = {s.marker: _encode_segment(tokenizer, s) for s in context_segments(fields)}

    def total() -> int:
        return sum(len(ids) for ids in context.values()) + len(head) + len(body)

    for marker in (FRASES, ENTIDADES):
        if total() > block_size and marker in context:
            del context[marker]
    if total() > block_size:
        keep = block_size - (total() - len(body))
        if keep < 1:
            raise ValueError(f"block_size {block_size} cannot hold the context and one tweet token")
        body = body[:keep]
    out = Encoded()
    for marker, ids in context.items():
        out.extend(ids, tokenizer.convert_tokens_to_ids(marker), False)
    out.extend(head, tweet_type, False)
    out.extend(body, tweet_type, True)
    return out
