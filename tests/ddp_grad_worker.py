"""Run by ``accelerate launch`` from tests/test_training.py: one data-parallel training step.

Each rank computes the loss of its own toy batch (with its own noise seed) through the training
loop's ``compute_loss``; rank 0 then writes the synchronised gradients to the given file.
"""

import sys

import torch
from accelerate import Accelerator
from safetensors.torch import save_file

import hf_nat
from hf_nat.trainer import compute_loss
from tests.toy import toy_batch, toy_config, toy_sentences, toy_tokenizer


def build():
    """The toy model every rank (and the single-process reference) starts from."""
    torch.manual_seed(0)
    tokenizer = toy_tokenizer()
    return hf_nat.CMLMForConditionalGeneration(toy_config(tokenizer)), tokenizer


def rank_batch(tokenizer, rank: int) -> dict:
    """The batch rank ``rank`` trains on (sizes differ between ranks on purpose)."""
    return toy_batch(tokenizer, toy_sentences(6 + 3 * rank, seed=50 + rank))


def main(out_path: str) -> None:
    torch.set_num_threads(1)
    accelerator = Accelerator()
    model, tokenizer = build()
    model = accelerator.prepare(model)
    generator = torch.Generator().manual_seed(1000 + accelerator.process_index)
    loss, _ = compute_loss(model, rank_batch(tokenizer, accelerator.process_index), generator, 0.0)
    accelerator.backward(loss)
    if accelerator.is_main_process:
        grads = {n: p.grad.detach().clone() for n, p in accelerator.unwrap_model(model).named_parameters()}
        save_file(grads, out_path)
        print(f"world_size={accelerator.num_processes}")
    accelerator.wait_for_everyone()


if __name__ == "__main__":
    main(sys.argv[1])
