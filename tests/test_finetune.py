"""`hf-nat finetune` (hf_nat.finetuning): Seq2SeqTrainer continues training a saved hf_nat checkpoint."""

import json
import logging

import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, Seq2SeqTrainingArguments

from hf_nat import CTCNATConfig, CTCNATForConditionalGeneration, cli
from hf_nat import finetuning as finetune
from tests.toy import CMLMForConditionalGeneration, toy_config, toy_sentences, toy_shape, toy_tokenizer


@pytest.fixture
def one_thread():
    """One torch thread: the model is tiny and other work may share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_corpus(folder, splits: dict[str, list[str]]) -> None:
    """A copy-task corpus in the Multi30k layout: ``{split}.xx`` and ``{split}.yy`` hold the same lines."""
    folder.mkdir()
    for split, sentences in splits.items():
        for lang in ("xx", "yy"):
            (folder / f"{split}.{lang}").write_text("\n".join(sentences) + "\n")


def save_toy_checkpoint(folder) -> None:
    """An untrained toy CMLM and its tokenizer, saved like any hf_nat checkpoint."""
    torch.manual_seed(0)
    tokenizer = toy_tokenizer()
    CMLMForConditionalGeneration(toy_config(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def run_finetune(tmp_path, *options: str) -> dict:
    """`hf-nat finetune` of ``tmp_path/base`` on the xx→yy corpus ``tmp_path/corpus`` into ``tmp_path/ft``,
    on the CPU without reporting, with ``options`` added."""
    folders = [
        "--model",
        str(tmp_path / "base"),
        "--data",
        str(tmp_path / "corpus"),
        "--output_dir",
        str(tmp_path / "ft"),
    ]
    return cli.main(["finetune", *folders, *"--src xx --tgt yy --use_cpu --report_to none".split(), *options])


def test_finetune_lowers_loss_and_saves_a_loadable_model(tmp_path, one_thread):
    save_toy_checkpoint(tmp_path / "base")
    write_corpus(tmp_path / "corpus", {"train": toy_sentences(512, seed=1), "val": toy_sentences(16, seed=2)})
    out = tmp_path / "ft"
    options = (
        "--max_steps 200 --learning_rate 3e-3 --lr_scheduler_type constant --per_device_train_batch_size 32 "
        "--logging_steps 20 --save_strategy no --eval_strategy steps --eval_steps 100 --seed 0 --disable_tqdm true "
        "--dataloader_pin_memory false"
    )
    generate = '{"max_iterations": 2, "length_beam": 2}'
    summary = run_finetune(tmp_path, *options.split(), "--eval_generate_kwargs", generate)

    losses = [entry["loss"] for entry in summary["losses"]]
    assert summary["global_step"] == 200 and len(losses) == 10
    assert sum(losses[-2:]) / 2 < 0.6 * losses[0], losses
    assert [entry["step"] for entry in summary["eval_losses"]] == [100, 200]
    assert set(summary["validation"]) == {"bleu", "chrf"}
    assert json.loads((out / finetune.SUMMARY_FILE).read_text())["losses"] == summary["losses"]

    assert (out / "model.safetensors").is_file()
    model = AutoModelForSeq2SeqLM.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert isinstance(model, CMLMForConditionalGeneration)
    batch = tokenizer(["w1 w2 w3", "w4 w5"], return_tensors="pt", padding=True)
    ids = model.generate(**batch, max_iterations=2)
    assert ids.shape[0] == 2 and len(tokenizer.batch_decode(ids, skip_special_tokens=True)) == 2


def test_trainer_does_not_treat_nat_losses_as_token_sums(tmp_path, one_thread):
    # forward(**kwargs) would make the Trainer pass num_items_in_batch and skip the division of
    # the loss by the gradient accumulation steps; hf_nat losses are batch means.
    torch.manual_seed(0)
    tokenizer = toy_tokenizer()
    model = CMLMForConditionalGeneration(toy_config(tokenizer))
    args = Seq2SeqTrainingArguments(
        output_dir=str(tmp_path), use_cpu=True, report_to="none", gradient_accumulation_steps=2
    )
    finetune.adapt_for_trainer(model, args)
    trainer = finetune.build_trainer(model, tokenizer, None, None, args)
    assert trainer.model_accepts_loss_kwargs is False and args.prediction_loss_only


def test_nat_models_refuse_predict_with_generate(tmp_path, one_thread):
    save_toy_checkpoint(tmp_path / "base")
    write_corpus(tmp_path / "corpus", {"train": toy_sentences(8, seed=1)})
    with pytest.raises(ValueError, match="predict_with_generate"):
        run_finetune(tmp_path, "--valid_split", "", "--predict_with_generate")


def test_finetune_filters_and_truncates_by_the_models_source_limit(tmp_path, one_thread, caplog):
    # An upsampling CTC model with 32 positions reads at most 32 // 3 = 10 source tokens: 13-token
    # sources must leave the training data and be cut for the BLEU pass, not end the run.
    torch.manual_seed(0)
    tokenizer = toy_tokenizer()
    CTCNATForConditionalGeneration(CTCNATConfig(**toy_shape(tokenizer, upsample_ratio=3))).save_pretrained(
        tmp_path / "base"
    )
    tokenizer.save_pretrained(tmp_path / "base")
    long = " ".join(["w3"] * 12)
    write_corpus(
        tmp_path / "corpus", {"train": toy_sentences(24, seed=1) + [long] * 8, "val": toy_sentences(3, seed=2) + [long]}
    )
    with caplog.at_level(logging.WARNING, logger="hf_nat.data.preprocess"):
        summary = run_finetune(
            tmp_path,
            *"--max_steps 2 --per_device_train_batch_size 32 --save_strategy no --disable_tqdm true".split(),
            *"--dataloader_pin_memory false".split(),
        )
    assert summary["global_step"] == 2 and set(summary["validation"]) == {"bleu", "chrf"}
    dropped = [r.getMessage() for r in caplog.records if "Dropped" in r.getMessage()]
    assert any("8 of 32" in m and "'train'" in m and "source <= 10" in m for m in dropped), dropped
