"""A tiny GPT-2 and byte-level BPE tokenizer built from a few sentences, in about a second.

Tests must never download a model, so every test that needs one builds it here: the same
layout as the real controlled model (control tokens registered as special tokens, ``[TWEET]``
as BOS, EOS as pad), only a few thousand parameters.
"""

from __future__ import annotations

from pathlib import Path

from generation.prompts import CONTROL_TOKENS, TWEET

CORPUS = [
    "El gobierno anunció hoy una reforma a las pensiones para todos los chilenos.",
    "Vamos a defender la educación pública, gratuita y de calidad en todo Chile.",
    "Gracias a todos los que nos acompañaron en Valparaíso y Concepción!",
    "La seguridad ciudadana es prioridad: más carabineros en las calles.",
    "No podemos aceptar más abusos: salud digna para las familias de Chile.",
    "Hoy conversamos con vecinos de Puente Alto sobre vivienda y transporte.",
    "#Pensiones dignas ya. El sistema de AFP tiene que cambiar.",
    "Felicitaciones a @CarolinaLeitao por su trabajo. Gran equipo!",
]


def build_tiny_model(folder: Path, *, vocab_size: int = 320, n_positions: int = 128) -> Path:
    """Train a tokenizer and save a randomly initialised tiny GPT-2 into ``folder``."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        CORPUS * 4, vocab_size=vocab_size, min_frequency=1,
        special_tokens=["<|endoftext|>", *CONTROL_TOKENS], show_progress=False,
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer,
        bos_token=TWEET, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        additional_special_tokens=[t for t in CONTROL_TOKENS if t != TWEET],
    )
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=n_positions, n_embd=32, n_layer=2, n_head=2,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    import torch

    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_taught_model(folder: Path, tweets: dict[str, str], rounds: int = 60) -> Path:
    """``build_tiny_model``, then trained on the CPU to write ``tweets[party]`` after a positive
    prompt for ``party``, and saved: a model whose next token has clear margins, so a test that
    compares decodings across devices or precisions is not at the mercy of near-ties."""
    import torch
    from transformers import AutoTokenizer, GPT2LMHeadModel

    from generation.prompts import ControlFields, encode_example

    build_tiny_model(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = GPT2LMHeadModel.from_pretrained(folder)
    examples = [encode_example(tokenizer, ControlFields(partido=party, sentimiento="POSITIVE"), tweet, 128)
                for party, tweet in tweets.items()]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    torch.manual_seed(0)
    for _ in range(rounds):
        for example in examples:
            out = model(input_ids=torch.tensor([example.input_ids]),
                        token_type_ids=torch.tensor([example.token_type_ids]),
                        labels=torch.tensor([example.labels]))
            out.loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    model.save_pretrained(folder)
    return folder
