#!/usr/bin/env python3
"""Writes Tests/Fixtures/generation/cases.json: expected outputs of transformers' `generate()` for a tiny
deterministic causal LM, so the Swift generation algorithms can be checked token for token without BLIP.

The model: vocabulary 40 (pad 0, bos 1, eos 3). The logits for the token after position t are
    A[x_t] + B[x_{t-1}] + C[t]        (float32, added in that order; B's last row stands for "no token")
with seeded random tables, scaled so that ties are rare, and an EOS column in C that grows with the
position so that beams finish at different lengths. The Swift test implements the same model as a
`TokenStepper` from the tables stored in the JSON.

Each case lists the parameters with the names `GenerationParameters` decodes (Hugging Face names), the
prefix, the tokenized bad words, and the expected sequences (trimmed after EOS) with their scores:
`sequences_scores` for beam search; for greedy the mean log-softmax of the processed scores at the chosen
tokens (the score the Swift `Generator` reports for greedy decoding).

A second list, `warper_cases`, records the output of transformers' temperature / top-k / top-p warpers on
fixed logit vectors (including ties), for the sampling path, which cannot be compared token for token.

Usage: python3 scripts/reference/make_generation_cases.py [output path]
Needs torch and transformers 5.24 (checked).
"""

import json
import math
import os
import sys
import warnings

import torch
import transformers
from torch import nn
from transformers import GenerationConfig, GenerationMixin, PretrainedConfig, PreTrainedModel
from transformers.generation.logits_process import (
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)
from transformers.modeling_outputs import CausalLMOutput

VOCAB = 40
PAD, BOS, EOS = 0, 1, 3
POSITIONS = 64


class TinyConfig(PretrainedConfig):
    model_type = "tiny-bigram-lm"

    def __init__(self, vocab_size=VOCAB, max_position_embeddings=POSITIONS, **kwargs):
        self.vocab_size = vocab_size
        self.max_position_embeddings = max_position_embeddings
        super().__init__(**kwargs)


class TinyLM(PreTrainedModel, GenerationMixin):
    config_class = TinyConfig
    main_input_name = "input_ids"

    def __init__(self, config):
        super().__init__(config)
        v, p = config.vocab_size, config.max_position_embeddings
        self.a = nn.Parameter(torch.zeros(v, v))  # (last token, vocab)
        self.b = nn.Parameter(torch.zeros(v + 1, v))  # (second-to-last token or "none" = v, vocab)
        self.c = nn.Parameter(torch.zeros(p, v))  # (position of the last token, vocab)
        self.post_init()

    def _init_weights(self, module):
        pass

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        rows, length = input_ids.shape
        none = torch.full((rows, 1), self.config.vocab_size, dtype=input_ids.dtype)
        previous = torch.cat([none, input_ids[:, :-1]], dim=1)
        positions = torch.arange(length)
        logits = (self.a[input_ids] + self.b[previous]) + self.c[positions][None, :, :]
        return CausalLMOutput(logits=logits)


def make_model():
    generator = torch.Generator().manual_seed(20240607)
    model = TinyLM(TinyConfig(bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD))
    with torch.no_grad():
        model.a.copy_(torch.randn(VOCAB, VOCAB, generator=generator) * 2.0)
        model.b.copy_(torch.randn(VOCAB + 1, VOCAB, generator=generator) * 1.0)
        c = torch.randn(POSITIONS, VOCAB, generator=generator) * 0.5
        # EOS gets likelier with the position, so that sequences end at a spread of lengths.
        c[:, EOS] += torch.arange(POSITIONS, dtype=torch.float32) * 0.35 - 2.0
        # Tokens 0 (pad) and 1 (bos) are never wanted as continuations.
        c[:, PAD] -= 8.0
        c[:, BOS] -= 8.0
        model.c.copy_(c)
    model.eval()
    return model


def effective_kwargs(parameters):
    """Our parameters → transformers kwargs, applying our defaults (max_length 20, min_length 5 in total
    tokens when neither the total nor the new-token form is given)."""
    p = dict(parameters)
    kwargs = {
        "num_beams": p.get("num_beams", 3),
        "length_penalty": p.get("length_penalty", 1.0),
        "early_stopping": p.get("early_stopping", False),
        "num_return_sequences": p.get("num_return_sequences", 1),
        "repetition_penalty": p.get("repetition_penalty", 1.0),
        "no_repeat_ngram_size": p.get("no_repeat_ngram_size", 0),
        "do_sample": False,
    }
    if "max_new_tokens" in p:
        kwargs["max_new_tokens"] = p["max_new_tokens"]
        if "max_length" in p:
            kwargs["max_length"] = p["max_length"]
    else:
        kwargs["max_length"] = p.get("max_length", 20)
    if "min_new_tokens" in p:
        kwargs["min_new_tokens"] = p["min_new_tokens"]
        if "min_length" in p:
            kwargs["min_length"] = p["min_length"]
    else:
        kwargs["min_length"] = p.get("min_length", 5)
    return kwargs


def trim_after_eos(tokens, prefix_length):
    for i in range(prefix_length, len(tokens)):
        if tokens[i] == EOS:
            return tokens[: i + 1]
    return tokens


def run_case(model, name, prefix, parameters, bad_words_ids=None, early_stopping_never=False):
    kwargs = effective_kwargs(parameters)
    if early_stopping_never:
        kwargs["early_stopping"] = "never"
    if bad_words_ids:
        kwargs["bad_words_ids"] = bad_words_ids
    input_ids = torch.tensor([prefix])
    with torch.no_grad():
        config = GenerationConfig(
            use_cache=False, return_dict_in_generate=True, output_scores=True,
            eos_token_id=EOS, pad_token_id=PAD, bos_token_id=BOS, **kwargs,
        )
        out = model.generate(input_ids, attention_mask=torch.ones_like(input_ids), generation_config=config)
    sequences = out.sequences.tolist()
    candidates = []
    if kwargs["num_beams"] > 1:
        # beam_indices is -1 past each sequence's generated length; the padding is not `pad_token_id` (see
        # the comment on the fill value in BeamSearch.swift), so the length is taken from beam_indices.
        generated = ((out.beam_indices + 1) != 0).sum(dim=1).tolist()
        for row, score in enumerate(out.sequences_scores.tolist()):
            tokens = sequences[row][: len(prefix) + generated[row]]
            assert tokens == trim_after_eos(sequences[row], len(prefix)), (name, sequences[row], generated[row])
            candidates.append({"tokens": tokens, "score": score})
    else:
        tokens = trim_after_eos(sequences[0], len(prefix))
        logprobs = []
        for step, token in enumerate(tokens[len(prefix):]):
            row = torch.log_softmax(out.scores[step][0], dim=-1)
            logprobs.append(float(row[token]))
        candidates.append({"tokens": tokens, "score": float(sum(logprobs) / len(logprobs))})
    case = {
        "name": name,
        "prefix": prefix,
        "parameters": parameters,
        "bad_words_ids": bad_words_ids or [],
        "early_stopping_never": early_stopping_never,
        "expected": candidates,
    }
    return case


def build_cases(model):
    cases = []
    prefixes = {"p1": [BOS], "p4": [BOS, 7, 12, 5]}

    def add(name, prefix_name, parameters, **kw):
        cases.append(run_case(model, f"{name}/{prefix_name}", prefixes[prefix_name], parameters, **kw))

    for pn in prefixes:
        # Greedy: lengths.
        add("greedy-defaults", pn, {"num_beams": 1})
        add("greedy-max-new-6", pn, {"num_beams": 1, "max_new_tokens": 6, "min_length": 0})
        add("greedy-max-length-9", pn, {"num_beams": 1, "max_length": 9, "min_length": 0})
        add("greedy-max-new-wins", pn, {"num_beams": 1, "max_new_tokens": 12, "max_length": 6, "min_length": 0})
        add("greedy-min-length-14", pn, {"num_beams": 1, "max_length": 30, "min_length": 14})
        add("greedy-min-new-10", pn, {"num_beams": 1, "max_new_tokens": 30, "min_new_tokens": 10})
        add("greedy-min-new-wins", pn, {"num_beams": 1, "max_new_tokens": 30, "min_new_tokens": 9, "min_length": 2})
        add("greedy-min-over-max", pn, {"num_beams": 1, "max_new_tokens": 7, "min_new_tokens": 12})
        add("greedy-min-0", pn, {"num_beams": 1, "max_length": 40, "min_length": 0})
        # Greedy: processors.
        add("greedy-rep-1.3", pn, {"num_beams": 1, "max_new_tokens": 25, "repetition_penalty": 1.3})
        add("greedy-rep-0.7", pn, {"num_beams": 1, "max_new_tokens": 25, "repetition_penalty": 0.7})
        add("greedy-ngram-2", pn, {"num_beams": 1, "max_new_tokens": 30, "min_new_tokens": 25, "no_repeat_ngram_size": 2})
        add("greedy-ngram-3", pn, {"num_beams": 1, "max_new_tokens": 30, "min_new_tokens": 25, "no_repeat_ngram_size": 3})
        add("greedy-ngram-1", pn, {"num_beams": 1, "max_new_tokens": 30, "no_repeat_ngram_size": 1})
        add("greedy-bad-single", pn, {"num_beams": 1, "max_new_tokens": 20}, bad_words_ids=[[16], [38]])
        add("greedy-bad-multi", pn, {"num_beams": 1, "max_new_tokens": 20}, bad_words_ids=[[16, 38], [5, 22, 9], [31]])
        add("greedy-bad-eos-ignored", pn, {"num_beams": 1, "max_new_tokens": 30, "min_length": 0}, bad_words_ids=[[EOS]])
        add("greedy-all-processors", pn, {"num_beams": 1, "max_new_tokens": 24, "min_new_tokens": 6,
                                          "repetition_penalty": 1.2, "no_repeat_ngram_size": 2},
            bad_words_ids=[[16, 38], [31]])

        # Beam search: beams × length penalty × early stopping.
        for beams in (2, 3, 4):
            for lp in (0.5, 1.0, 2.0):
                for es in (False, True, "never"):
                    params = {"num_beams": beams, "length_penalty": lp, "early_stopping": es is True,
                              "num_return_sequences": beams, "max_new_tokens": 24, "min_length": 0}
                    add(f"beam{beams}-lp{lp}-es{es}", pn, params, early_stopping_never=(es == "never"))
        add("beam1-is-greedy", pn, {"num_beams": 1, "length_penalty": 2.0, "max_new_tokens": 10})
        add("beam-defaults", pn, {})
        add("beam3-return-2", pn, {"num_beams": 3, "num_return_sequences": 2, "max_length": 25})
        add("beam3-lp-0", pn, {"num_beams": 3, "length_penalty": 0.0, "num_return_sequences": 3, "max_new_tokens": 20},
            early_stopping_never=True)
        add("beam3-lp-neg", pn, {"num_beams": 3, "length_penalty": -1.0, "num_return_sequences": 3, "max_new_tokens": 20},
            early_stopping_never=True)
        add("beam3-lp-neg-false", pn, {"num_beams": 3, "length_penalty": -1.0, "num_return_sequences": 3, "max_new_tokens": 20})
        add("beam4-short-max", pn, {"num_beams": 4, "num_return_sequences": 4, "max_new_tokens": 3, "min_length": 0})
        add("beam4-max-new-1", pn, {"num_beams": 4, "num_return_sequences": 4, "max_new_tokens": 1, "min_length": 0})
        add("beam3-min-length-12", pn, {"num_beams": 3, "num_return_sequences": 3, "max_length": 30, "min_length": 12})
        add("beam3-min-new-8", pn, {"num_beams": 3, "num_return_sequences": 3, "max_new_tokens": 30, "min_new_tokens": 8})
        add("beam3-min-over-max", pn, {"num_beams": 3, "num_return_sequences": 3, "max_new_tokens": 6, "min_new_tokens": 9})
        add("beam3-rep-1.5", pn, {"num_beams": 3, "num_return_sequences": 3, "max_new_tokens": 24, "repetition_penalty": 1.5})
        add("beam3-rep-0.8", pn, {"num_beams": 3, "num_return_sequences": 3, "max_new_tokens": 24, "repetition_penalty": 0.8})
        add("beam3-ngram-2", pn, {"num_beams": 3, "num_return_sequences": 3, "max_new_tokens": 30, "min_new_tokens": 20,
                                  "no_repeat_ngram_size": 2})
        add("beam4-ngram-3", pn, {"num_beams": 4, "num_return_sequences": 2, "max_new_tokens": 30, "no_repeat_ngram_size": 3})
        add("beam3-bad-single", pn, {"num_beams": 3, "num_return_sequences": 3, "max_new_tokens": 20},
            bad_words_ids=[[16], [38], [22]])
        add("beam3-bad-multi", pn, {"num_beams": 3, "num_return_sequences": 3, "max_new_tokens": 20},
            bad_words_ids=[[16, 38], [5, 22, 9], [31], [EOS]])
        add("beam4-all-processors", pn, {"num_beams": 4, "num_return_sequences": 3, "max_new_tokens": 26,
                                         "min_new_tokens": 7, "repetition_penalty": 1.25, "no_repeat_ngram_size": 2,
                                         "length_penalty": 0.8, "early_stopping": True},
            bad_words_ids=[[16, 38], [31]])
    return cases


def build_warper_cases():
    generator = torch.Generator().manual_seed(7)
    vectors = []
    for _ in range(4):
        vectors.append(torch.randn(VOCAB, generator=generator) * 3.0)
    tied = torch.randn(VOCAB, generator=generator).round()  # many exact ties
    vectors.append(tied)
    masked = torch.randn(VOCAB, generator=generator) * 2.0
    masked[::3] = -math.inf
    vectors.append(masked)
    settings = [
        (1.0, 0, 1.0, 1), (0.7, 0, 1.0, 1), (1.6, 0, 1.0, 1),
        (1.0, 1, 1.0, 1), (1.0, 5, 1.0, 1), (1.0, 50, 1.0, 1), (1.0, 3, 1.0, 2),
        (1.0, 0, 0.9, 1), (1.0, 0, 0.5, 1), (1.0, 0, 0.05, 1), (1.0, 0, 0.05, 2), (1.0, 0, 0.999, 1),
        (0.8, 10, 0.9, 1), (1.3, 4, 0.6, 2),
    ]
    cases = []
    for vi, vector in enumerate(vectors):
        for temperature, top_k, top_p, keep in settings:
            scores = vector[None, :].clone()
            dummy = torch.zeros((1, 1), dtype=torch.long)
            if temperature != 1.0:
                scores = TemperatureLogitsWarper(temperature)(dummy, scores)
            if top_k != 0:
                scores = TopKLogitsWarper(top_k=top_k, min_tokens_to_keep=keep)(dummy, scores)
            if top_p < 1.0:
                scores = TopPLogitsWarper(top_p=top_p, min_tokens_to_keep=keep)(dummy, scores)
            if vi == 4 and top_p < 1.0:
                # torch.sort (unstable) orders exact ties arbitrarily, and that order decides which tied
                # token top-p drops; the Swift code orders ties by token id. Not comparable.
                continue
            cases.append({
                "name": f"v{vi}-t{temperature}-k{top_k}-p{top_p}-keep{keep}",
                "logits": [None if math.isinf(x) else x for x in vector.tolist()],
                "temperature": temperature, "top_k": top_k, "top_p": top_p, "min_tokens_to_keep": keep,
                "expected": [None if math.isinf(x) else x for x in scores[0].tolist()],
            })
    return cases


def main():
    assert transformers.__version__ == "5.24.0", transformers.__version__
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "Tests", "Fixtures", "generation", "cases.json")
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")  # transformers warns about the deliberately odd length combinations
    transformers.logging.set_verbosity_error()
    model = make_model()
    document = {
        "comment": "Generated by scripts/reference/make_generation_cases.py with transformers "
        + transformers.__version__ + " and torch " + torch.__version__ + ". Do not edit.",
        "vocab_size": VOCAB, "pad": PAD, "bos": BOS, "eos": EOS,
        "a": model.a.detach().tolist(),
        "b": model.b.detach().tolist(),
        "c": model.c.detach().tolist(),
        "cases": build_cases(model),
        "warper_cases": build_warper_cases(),
    }
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(document, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(document['cases'])} cases and {len(document['warper_cases'])} warper cases to {path}")


if __name__ == "__main__":
    main()
