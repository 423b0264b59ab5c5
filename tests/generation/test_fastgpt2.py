"""The lean GPT-2 forward computes what Hugging Face's does, and decoding does not change."""

from __future__ import annotations

import copy

import pytest
import torch

from generation.decoding import batch as batch_module
from generation.decoding.fastgpt2 import GPT2Stepper
from generation.decoding.sampling import Row, TokenTable, decode_batch
from generation.decoding.stepper import HFStepper, make_stepper
from generation.prompts import ControlFields
from generation.registry import LoadedModel, ModelRegistry
from generation.serving.backends.local import encode
from generation.settings import ModelSpec
from generation.types import PromptSpec, SamplingParams


@pytest.fixture(scope="module")
def gpt2() -> torch.nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=97, n_positions=64, n_embd=32, n_layer=3, n_head=4)
    return GPT2LMHeadModel(config).eval()


def left_padded(prompts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, prompts))
    ids = torch.zeros((len(prompts), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, p in enumerate(prompts):
        ids[i, width - len(p):], mask[i, width - len(p):] = torch.tensor(p), 1
    return ids, mask


@torch.inference_mode()
def reference(model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
    """Hugging Face's last-position logits over the whole sequence, no cache."""
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, token_type_ids=types)
    return out.logits[:, -1]


@torch.inference_mode()
def test_stepper_logits_equal_the_models_with_padding_types_growth_and_keep(gpt2: torch.nn.Module) -> None:
    ids, mask = left_padded([[5, 6, 7], [8, 9, 10, 11, 12, 13], [14]])
    types = torch.where(mask.bool(), torch.tensor([[1, 1, 2, 2, 3, 3]])[:, -ids.shape[1]:], 0)
    stepper = GPT2Stepper(gpt2)
    torch.testing.assert_close(stepper.prefill(ids, mask, types), reference(gpt2, ids, mask, types))
    generator = torch.Generator().manual_seed(1)
    for step in range(30):  # past the first capacity (16 positions): the cache grows twice
        if step == 7:  # line 1 finishes: the others go on in a new order
            lines = torch.tensor([2, 0])
            stepper.keep(lines)
            ids, mask, types = ids[lines], mask[lines], types[lines]
        new = torch.randint(0, 97, (len(ids), 1), generator=generator)
        new_types = types[:, -1:]
        got = stepper.step(new, new_types)
        ids, types = torch.cat([ids, new], 1), torch.cat([types, new_types], 1)
        mask = torch.cat([mask, torch.ones_like(new)], 1)
        torch.testing.assert_close(got, reference(gpt2, ids, mask, types), rtol=1e-4, atol=1e-5)


@torch.inference_mode()
def test_half_precision_follows_the_model_too(gpt2: torch.nn.Module) -> None:
    half = copy.deepcopy(gpt2).half()
    ids, mask = left_padded([[5, 6, 7], [8, 9, 10, 11, 12]])
    lean, reference_stepper = GPT2Stepper(half), HFStepper(half)
    got, expected = lean.prefill(ids, mask, None, 8), reference_stepper.prefill(ids, mask, None)
    for step in range(8):
        assert got.dtype == torch.float32  # the head runs in float32 whatever the model's dtype
        torch.testing.assert_close(got, expected.float(), rtol=1e-2, atol=1e-2)
        new = got.argmax(-1, keepdim=True)
        if step == 3:
            lean.keep(torch.tensor([1]))
            reference_stepper.keep(torch.tensor([1]))
            new = new[1:]
        got, expected = lean.step(new, None), reference_stepper.step(new, None)


@torch.inference_mode()
def test_the_final_norm_and_head_run_in_float32_for_a_bfloat16_model(gpt2: torch.nn.Module) -> None:
    """Item 5 (issue 30): logits of the size the 124M models give (30-130) round by 0.125-0.25
    nats in bfloat16; the lean stepper's head is float32, so only the hidden states carry the
    model's precision."""
    model = copy.deepcopy(gpt2).to(torch.bfloat16)
    model.lm_head.weight.mul_(200)  # (tied with the embeddings, unused here)
    hidden = torch.randn(4, model.config.n_embd, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    ln = model.transformer.ln_f
    exact = torch.nn.functional.linear(
        torch.nn.functional.layer_norm(hidden.double(), (hidden.shape[-1],), ln.weight.double(), ln.bias.double(),
                                       model.config.layer_norm_epsilon),
        model.lm_head.weight.double())
    ours = GPT2Stepper(model).logits(hidden)
    theirs = model.lm_head(ln(hidden))
    assert exact.abs().max() > 30
    assert ours.dtype == torch.float32 and (ours.double() - exact).abs().max() < 1e-3
    assert (theirs.double() - exact).abs().max() > 0.05


@torch.inference_mode()
def test_padded_fixed_shape_steps_compute_what_plain_steps_do(gpt2: torch.nn.Module) -> None:
    """The step CUDA graphs record (padded to a bucket, attention over every cached position,
    padding rows that do not advance), run eagerly here: the same logits, through lines joining
    and leaving."""
    plain, padded = GPT2Stepper(gpt2), GPT2Stepper(gpt2, graphs=True)
    assert padded.graphs is not None and padded.graphs.recorder is None  # no GPU: eager
    prompts, types = [[5, 6, 7], [8, 9, 10, 11, 12]], [[1, 1, 2], [1, 1, 2, 2, 3]]
    got, expected = padded.join(prompts, types, 20), plain.join(prompts, types, 20)
    generator = torch.Generator().manual_seed(2)
    for step in range(12):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
        if step == 4:  # a line joins
            got = torch.cat([got, padded.join([[20, 21]], [[1, 2]], 20)])
            expected = torch.cat([expected, plain.join([[20, 21]], [[1, 2]], 20)])
        if step == 8:  # the first line leaves, the last takes its slot
            padded.keep([2, 1])
            plain.keep([2, 1])
        new = torch.randint(0, 97, (plain.lines, 1), generator=generator)
        new_types = torch.full_like(new, 3)
        got, expected = padded.step(new, new_types), plain.step(new, new_types)
    assert padded.host_lengths == plain.host_lengths
    assert padded.lengths[: padded.lines].tolist() == plain.host_lengths


def test_gpt2_gets_the_lean_stepper_and_others_the_hugging_face_one(gpt2: torch.nn.Module) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    assert isinstance(make_stepper(gpt2), GPT2Stepper)
    llama = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2))
    assert isinstance(make_stepper(llama), HFStepper)


def rows(lm: LoadedModel) -> list[Row]:
    """Sampled and greedy rows of different lengths, guided ones with negative lines, one early
    finish, so lines leave the batch while others go on."""
    def prompt(party: str) -> tuple[list[int], list[int] | None]:
        return encode(lm, PromptSpec("controlled", ControlFields(partido=party, sentimiento="POSITIVE")))

    out = []
    for seed, (party, extra) in enumerate([
        ("UDI", {"temperature": 0.0, "contrast_guidance": 2.0}),
        ("Partido Comunista de Chile", {"max_new_tokens": 5}),
        ("RN", {"temperature": 1.2, "top_p": 1.0, "contrast_guidance": 1.0, "max_new_tokens": 9}),
        ("RD", {"temperature": 0.0, "repetition_penalty": 1.3}),
    ]):
        ids, types = prompt(party)
        params = SamplingParams(**{"max_new_tokens": 24, "ignore_eos": True, **extra})
        out.append(Row(ids, types, params, seed, negatives=(prompt("PS"), prompt("Evópoli"))))
    return out


@pytest.mark.parametrize("quantize", ["none", "int8"])
def test_decode_batch_gives_the_same_tweets_as_through_hugging_face(
    tiny_model_dir, quantize: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = ModelSpec(path=str(tiny_model_dir), kind="controlled", quantize=quantize, device="cpu")
    lm = ModelRegistry({"m": spec}, threads=1).get("m")
    table = TokenTable(lm.tokenizer, lm.model.get_output_embeddings().out_features)
    lean = decode_batch(lm, table, rows(lm))
    monkeypatch.setattr(batch_module, "make_stepper", lambda model, graphs=False, recorder=None: HFStepper(model))
    slow = decode_batch(lm, table, rows(lm))
    assert [r.token_ids for r in lean] == [r.token_ids for r in slow]
    assert [len(r.token_ids) for r in lean] == [24, 5, 9, 24]
