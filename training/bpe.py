"""``tokenizer``: a byte-level BPE (Hugging Face ``tokenizers``) with the thesis's control tokens.

The result is saved as a ``PreTrainedTokenizerFast`` in the layout the bot expects: ``[TWEET]``
as BOS, ``<|endoftext|>`` as EOS, pad and unk, the six context markers as additional special
tokens, so that they are never split and never learnt as ordinary text.
"""

from __future__ import annotations

from pathlib import Path

from generation.prompts import CONTEXT_MARKERS, CONTROL_TOKENS, TWEET
from training.corpus import iter_documents
from training.errors import InputError
from training.lm import EOS


def train_tokenizer(
    files: list[Path], out: Path, vocab_size: int = 8000, min_frequency: int = 2,
    text_field: str | None = None, progress: bool = True,
):
    """Train on ``files`` and save to ``out``; returns the ``PreTrainedTokenizerFast``."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    special = [EOS, *CONTROL_TOKENS]
    if vocab_size < 256 + len(special):
        raise InputError(f"vocab size {vocab_size} is below the 256 bytes plus {len(special)} special tokens")
    documents = iter_documents(files, text_field)
    first = next(documents, None)
    if first is None:
        raise InputError("the corpus is empty")
    bpe = ByteLevelBPETokenizer()

    def texts():
        yield first
        yield from documents

    bpe.train_from_iterator(
        texts(), vocab_size=vocab_size, min_frequency=min_frequency,
        special_tokens=special, show_progress=progress,
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer, bos_token=TWEET, eos_token=EOS, pad_token=EOS,
        unk_token=EOS, additional_special_tokens=list(CONTEXT_MARKERS),
        model_max_length=1 << 20,
    )
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(out))
    return tokenizer
