"""Invented words: how often a tweet holds a word no reader would know.

A word is invented when it is neither in the training text nor accepted by a Hunspell
dictionary (Debian's ``hunspell-es`` Chilean one by default, ``es_CL``); mentions, hashtags,
links and numbers are not words here (``generation.decoding.judge.plain_words``). The
dictionary is read with spylls, Hunspell ported to pure Python (the ``train`` extra), so no
system library is needed beyond the ``.dic``/``.aff`` pair.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from generation.decoding.judge import plain_words

#: Debian's hunspell-es, Chilean Spanish (``apt-get install hunspell-es``).
DEFAULT_DICTIONARY = Path("/usr/share/hunspell/es_CL")


class InventedWords:
    """Checks words against the training text's vocabulary, then the dictionary (cached)."""

    def __init__(self, training_texts: Iterable[str], dictionary: Path = DEFAULT_DICTIONARY) -> None:
        from spylls.hunspell import Dictionary

        self.known = {w.casefold() for text in training_texts for w in plain_words(text)}
        self.dictionary = Dictionary.from_files(str(dictionary))
        self._checked: dict[str, bool] = {}

    @staticmethod
    def available(dictionary: Path = DEFAULT_DICTIONARY) -> str:
        """"" when the measure can run, else why not (one line)."""
        try:
            import spylls  # noqa: F401
        except ImportError:
            return "spylls is not installed (pip install -e '.[train]')"
        if not dictionary.with_suffix(".dic").is_file() or not dictionary.with_suffix(".aff").is_file():
            return f"no Hunspell dictionary at {dictionary}.dic/.aff (apt-get install hunspell-es)"
        return ""

    def accepted(self, word: str) -> bool:
        """Whether the dictionary takes ``word`` as written, in lower case or capitalised."""
        folded = word.casefold()
        if folded not in self._checked:
            self._checked[folded] = any(self.dictionary.lookup(f) for f in {word, folded, folded.capitalize()})
        return self._checked[folded]

    def invented(self, word: str) -> bool:
        return word.casefold() not in self.known and not self.accepted(word)

    def words(self, text: str) -> list[str]:
        """The invented words of ``text``, in order."""
        return [w for w in plain_words(text) if self.invented(w)]

    def share(self, texts: Sequence[str]) -> float:
        """The share of ``texts`` holding at least one invented word."""
        return sum(bool(self.words(t)) for t in texts) / len(texts) if texts else float("nan")
