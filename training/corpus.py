"""Plain-text corpora streamed from disk and packed into equal blocks of tokens.

A Wikipedia dump does not fit in memory as token ids, so documents are read one at a time
(a line of a text file, or a row of a JSONL/CSV/Parquet table), tokenized in chunks and cut into
``block_size`` pieces as they come. Blocks are shuffled through a bounded buffer.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import torch

from training.errors import InputError
from training.tables import pick_column, read_rows

TEXT_FIELDS = ("tweet", "text", "texto", "full_text")


def iter_documents(files: list[Path], text_field: str | None = None) -> Iterator[str]:
    """Non-empty documents: lines of ``.txt`` files, the text column of tables."""
    for path in map(Path, files):
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        if path.suffix.lower() in (".txt", ".text", ""):
            with path.open(encoding="utf-8") as handle:
                for line in handle:
                    if line.strip():
                        yield line.strip()
        else:
            column = pick_column(path, text_field, TEXT_FIELDS, "text")
            for row in read_rows(path):
                text = str(row.get(column) or "").strip()
                if text:
                    yield text


class PackedCorpus(torch.utils.data.IterableDataset):
    """Blocks of ``block_size`` token ids, labels equal to inputs (the model shifts them).

    ``wrap`` puts BOS before and EOS after every document (the thesis's "with-bos-eos" tweet
    models); otherwise documents are only separated by EOS, as GPT-2 was pretrained.
    """

    def __init__(
        self, files: list[Path], tokenizer, block_size: int, *, wrap: bool = False,
        text_field: str | None = None, shuffle_buffer: int = 2048, seed: int = 0, chunk: int = 512,
    ) -> None:
        super().__init__()
        if block_size < 2:
            raise InputError("block size must be at least 2")
        self.files = list(files)
        self.tokenizer = tokenizer
        self.block_size = block_size
        self.wrap = wrap
        self.text_field = text_field
        self.shuffle_buffer = shuffle_buffer
        self.seed = seed
        self.chunk = chunk
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by the Trainer each epoch, so every pass shuffles differently."""
        self.epoch = epoch

    def _token_stream(self) -> Iterator[list[int]]:
        bos, eos = self.tokenizer.bos_token_id, self.tokenizer.eos_token_id
        batch: list[str] = []

        def encode() -> Iterator[list[int]]:
            for ids in self.tokenizer(batch, add_special_tokens=False)["input_ids"]:
                yield ([bos] if self.wrap else []) + ids + [eos]

        for document in iter_documents(self.files, self.text_field):
            batch.append(document)
            if len(batch) == self.chunk:
                yield from encode()
                batch = []
        if batch:
            yield from encode()

    def blocks(self) -> Iterator[list[int]]:
        """The corpus's blocks in file order (the last partial block is dropped)."""
        buffer: list[int] = []
        for ids in self._token_stream():
            buffer.extend(ids)
            while len(buffer) >= self.block_size:
                yield buffer[: self.block_size]
                buffer = buffer[self.block_size:]

    def count(self) -> int:
        """How many blocks one pass yields (one tokenization pass over the corpus)."""
        return sum(1 for _ in self.blocks())

    def __iter__(self) -> Iterator[dict[str, list[int]]]:
        rng = random.Random(self.seed * 1_000_003 + self.epoch)
        pool: list[list[int]] = []
        for block in self.blocks():
            pool.append(block)
            if len(pool) >= self.shuffle_buffer:
                yield _example(pool.pop(rng.randrange(len(pool))))
        rng.shuffle(pool)
        for block in pool:
            yield _example(block)


def _example(block: list[int]) -> dict[str, list[int]]:
    return {"input_ids": block, "labels": block}
