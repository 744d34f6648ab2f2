"""`hf-nat train` (the Accelerate training loop): data parallelism, bit-identical resume, checkpoints."""

import gzip
import json
import os
import shutil

import pytest
import torch
from safetensors.torch import load_file
from transformers import PreTrainedTokenizerFast

from hf_nat.cli import build_parser
from hf_nat.cli import main as cli_main
from hf_nat.trainer import compute_loss, inverse_sqrt_lr
from tests.ddp_grad_worker import build, rank_batch
from tests.launch_helpers import launch_two_processes
from tests.toy import toy_ar_model, toy_sentences, toy_tokenizer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv: list[str]) -> dict:
    """``hf-nat train`` with ``argv``."""
    return cli_main(["train", *argv])


def test_two_process_gradient_equals_average_of_single_process_gradients(tmp_path):
    out = tmp_path / "grads.safetensors"
    result = launch_two_processes([os.path.join(REPO, "tests", "ddp_grad_worker.py"), str(out)], tmp_path)
    assert "world_size=2" in result.stdout
    ddp = load_file(out)

    model, tokenizer = build()
    reference = {}
    for rank in (0, 1):
        model.zero_grad()
        loss, _ = compute_loss(model, rank_batch(tokenizer, rank), torch.Generator().manual_seed(1000 + rank), 0.0)
        loss.backward()
        for name, p in model.named_parameters():
            reference[name] = reference.get(name, 0) + p.grad / 2
    assert set(ddp) == set(reference)
    for name, grad in reference.items():
        torch.testing.assert_close(ddp[name], grad, rtol=1e-4, atol=1e-6, msg=name)


@pytest.fixture(scope="module")
def toy_corpus(tmp_path_factory):
    """A toy copy corpus in Multi30k's layout plus a saved tokenizer."""
    root = tmp_path_factory.mktemp("toy_corpus")
    for split, n, seed in (("train", 120, 1), ("val", 12, 2)):
        sentences = toy_sentences(n, seed=seed)
        for lang in ("xx", "yy"):
            with gzip.open(root / f"{split}.{lang}.gz", "wt", encoding="utf-8") as f:
                f.write("\n".join(sentences) + "\n")
    toy_tokenizer().save_pretrained(root / "tokenizer")
    return root


def _train_args(corpus, output_dir, updates: int, *extra: str) -> list[str]:
    return [
        "--model_type",
        "cmlm",
        "--data",
        str(corpus),
        "--src",
        "xx",
        "--tgt",
        "yy",
        "--tokenizer",
        str(corpus / "tokenizer"),
        "--output_dir",
        str(output_dir),
        "--d_model",
        "32",
        "--layers",
        "1",
        "--heads",
        "2",
        "--ffn_dim",
        "64",
        "--max_positions",
        "32",
        "--max_tokens",
        "200",
        "--max_updates",
        str(updates),
        "--save_every",
        "3",
        "--eval_every",
        "1000",
        "--warmup",
        "2",
        "--log_every",
        "1",
        "--no_progress",
        "--dropout",
        "0.1",
        *extra,
    ]


def _weights(path) -> dict:
    return load_file(os.path.join(path, "final", "model.safetensors"))


def test_resume_is_bit_identical(toy_corpus, tmp_path):
    main(_train_args(toy_corpus, tmp_path / "straight", 8))
    main(_train_args(toy_corpus, tmp_path / "resumed", 5))  # killed after 5: last checkpoint at 5
    main(_train_args(toy_corpus, tmp_path / "resumed", 8, "--resume"))
    straight, resumed = _weights(tmp_path / "straight"), _weights(tmp_path / "resumed")
    assert straight.keys() == resumed.keys()
    for name in straight:
        assert torch.equal(straight[name], resumed[name]), name
    summary = json.loads((tmp_path / "resumed" / "summary.json").read_text())
    assert summary["updates"] == 8


def test_per_invocation_time_limit_stops_with_a_checkpoint_and_resumes(toy_corpus, tmp_path):
    out = tmp_path / "stepwise"
    first = main(_train_args(toy_corpus, out, 8, "--max_minutes_this_run", "0"))
    assert first["updates"] == 1  # stopped after the first update, checkpoint written
    assert (out / "checkpoints" / "step_1").is_dir()
    second = main(_train_args(toy_corpus, out, 8, "--resume"))
    assert second["updates"] == 8


def test_training_script_trains_ctc_with_glancing(toy_corpus, tmp_path):
    args = _train_args(toy_corpus, tmp_path / "ctc", 4, "--config_overrides", '{"glancing": true}')
    args[args.index("cmlm")] = "ctc_nat"
    summary = main(args)
    assert summary["updates"] == 4
    config = json.loads((tmp_path / "ctc" / "final" / "config.json").read_text())
    assert config["model_type"] == "ctc_nat" and config["glancing"] is True
    log = [json.loads(line) for line in (tmp_path / "ctc" / "train_log.jsonl").read_text().splitlines()]
    assert any("revealed" in record for record in log)


def test_resume_without_or_with_broken_checkpoint_is_a_clear_error(toy_corpus, tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        main(_train_args(toy_corpus, tmp_path / "empty", 3, "--resume"))
    main(_train_args(toy_corpus, tmp_path / "broken", 3))
    checkpoint = tmp_path / "broken" / "checkpoints" / "step_3"
    for f in checkpoint.iterdir():
        if f.suffix == ".safetensors":
            f.write_bytes(b"garbage")
    with pytest.raises(RuntimeError, match="step_3"):
        main(_train_args(toy_corpus, tmp_path / "broken", 6, "--resume"))


def test_training_script_runs_as_two_processes(toy_corpus, tmp_path):
    launch_two_processes(
        [os.path.join(REPO, "training", "train.py"), *_train_args(toy_corpus, tmp_path / "ddp", 4)], tmp_path
    )
    summary = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["updates"] == 4
    for folder in ("best", "final"):
        assert (tmp_path / "ddp" / folder / "model.safetensors").exists()
        assert (tmp_path / "ddp" / folder / "tokenizer.json").exists()
    log = [json.loads(line) for line in (tmp_path / "ddp" / "train_log.jsonl").read_text().splitlines()]
    assert any("valid_bleu" in record for record in log)


def test_inverse_sqrt_schedule():
    assert inverse_sqrt_lr(1, 1.0, 4) == pytest.approx(0.25)
    assert inverse_sqrt_lr(4, 1.0, 4) == pytest.approx(1.0)
    assert inverse_sqrt_lr(16, 1.0, 4) == pytest.approx(0.5)


def _copy_corpus(folder, splits: dict[str, list[str]]):
    """A copy-task corpus (``{split}.xx`` = ``{split}.yy``) with the toy tokenizer, in ``folder``."""
    folder.mkdir()
    for split, sentences in splits.items():
        for lang in ("xx", "yy"):
            (folder / f"{split}.{lang}").write_text("\n".join(sentences) + "\n")
    toy_tokenizer().save_pretrained(folder / "tokenizer")
    return folder


def test_upsampling_ctc_filters_and_truncates_sources_by_its_own_limit(tmp_path, caplog):
    # With 32 positions and upsample_ratio 3 the model reads at most 10 source tokens: 13-token
    # sources must leave the training set and be cut for validation, not end the run.
    long = " ".join(["w3"] * 12)
    corpus = _copy_corpus(
        tmp_path / "corpus",
        {"train": toy_sentences(60, seed=1) + [long] * 20, "val": toy_sentences(4, seed=2) + [long]},
    )
    args = _train_args(corpus, tmp_path / "ctc", 3, "--config_overrides", '{"upsample_ratio": 3}')
    args[args.index("cmlm")] = "ctc_nat"
    with caplog.at_level("WARNING", logger="hf_nat.data.preprocess"):
        summary = main(args)
    assert summary["updates"] == 3
    assert any("Dropped 20 of 80" in r.getMessage() and "source <= 10" in r.getMessage() for r in caplog.records)


def test_all_empty_training_split_is_a_clear_error(tmp_path):
    corpus = _copy_corpus(tmp_path / "corpus", {"train": ["w1 w2"], "val": toy_sentences(4, seed=2)})
    (corpus / "train.yy").write_text("   \n")  # the only pair loses its target
    with pytest.raises(ValueError, match=r"no pairs.*'train'"):
        main(_train_args(corpus, tmp_path / "run", 3))


def test_all_empty_validation_split_is_refused_before_training(tmp_path, monkeypatch):
    corpus = _copy_corpus(tmp_path / "corpus", {"train": toy_sentences(40, seed=1), "val": ["", " "]})
    monkeypatch.setattr("hf_nat.trainer.compute_loss", lambda *a: pytest.fail("trained before the check"))
    with pytest.raises(ValueError, match=r"no pairs.*'val'"):
        main(_train_args(corpus, tmp_path / "run", 3))


def test_training_split_emptied_by_the_length_filter_is_a_clear_error(tmp_path):
    corpus = _copy_corpus(tmp_path / "corpus", {"train": [" ".join(["w1"] * 12)] * 3, "val": ["w1 w2"]})
    with pytest.raises(ValueError, match=r"'train'.*length limits"):
        main(_train_args(corpus, tmp_path / "run", 3, "--max_length", "8"))


def test_resumed_run_logs_each_step_once(toy_corpus, tmp_path):
    out = tmp_path / "run"
    main(_train_args(toy_corpus, out, 5))  # checkpoints at steps 3 and 5, log records for 1..5
    shutil.rmtree(out / "checkpoints" / "step_5")  # killed after step 5's log line, before its checkpoint
    main(_train_args(toy_corpus, out, 8, "--resume"))  # resumes from step 3
    records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == list(range(1, 9))
    validations = [r["step"] for r in records if "valid_bleu" in r]
    assert validations == sorted(set(validations)) and validations[-1] == 8
    assert not list(out.glob("*.tmp*"))


def test_checkpoints_do_not_report_removed_shared_tensors(toy_corpus, tmp_path, caplog):
    # Tied embeddings are stored once by design; accelerate's "Removed shared tensor" notice at
    # every checkpoint is noise.
    with caplog.at_level("WARNING"):
        main(_train_args(toy_corpus, tmp_path / "run", 3, "--save_every", "1"))
    assert (tmp_path / "run" / "checkpoints" / "step_3").is_dir()
    assert not [r for r in caplog.records if "Removed shared tensor" in r.getMessage()]


def test_silencing_the_tied_weight_notice_keeps_other_warnings(caplog):
    from accelerate import PartialState
    from accelerate.utils import other

    from hf_nat.checkpoints import quiet_tied_weight_dedupe

    PartialState()  # accelerate's logger needs it
    with caplog.at_level("WARNING"):
        with quiet_tied_weight_dedupe():
            other.logger.warning("Removed shared tensor {'lm_head.weight'} while saving. This should be OK")
            other.logger.warning("a real problem while saving")
        other.logger.warning("Removed shared tensor {'x'} while saving, outside a checkpoint")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "[RANK 0] a real problem while saving",
        "[RANK 0] Removed shared tensor {'x'} while saving, outside a checkpoint",
    ]


def test_final_weights_share_the_file_of_identical_best_weights(tmp_path):
    from hf_nat.checkpoints import share_identical_weights

    for name, content in (("best", b"same"), ("final", b"same"), ("other", b"diff")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.safetensors").write_bytes(content)
    assert not share_identical_weights(tmp_path / "best", tmp_path / "other")
    assert share_identical_weights(tmp_path / "best", tmp_path / "final")
    assert os.path.samefile(tmp_path / "best" / "model.safetensors", tmp_path / "final" / "model.safetensors")
    assert (tmp_path / "final" / "model.safetensors").read_bytes() == b"same"


def test_progress_bar_has_a_total_and_eta_under_a_time_budget():
    from hf_nat.checkpoints import TrainState
    from hf_nat.trainer import progress_bar

    state = TrainState(generator=torch.Generator(), step=10, train_seconds=30.0)
    timed = progress_bar(
        build_parser().parse_args(["train", "--output_dir", "x", "--max_minutes", "2"]), state, disable=True
    )
    assert (timed.total, timed.n) == (120, 30)
    counted = progress_bar(
        build_parser().parse_args(["train", "--output_dir", "x", "--max_updates", "50"]), state, disable=True
    )
    assert (counted.total, counted.n) == (50, 10)


@pytest.mark.parametrize("model_type", ["levenshtein_transformer", "marian"])
def test_misspelt_config_overrides_are_refused_with_the_valid_names(model_type):
    from hf_nat.model_builder import build_model

    args = build_parser().parse_args(
        ["train", "--output_dir", "x", "--model_type", model_type, "--config_overrides", '{"draft_nosie_prob": 0.3}']
    )
    with pytest.raises(ValueError, match="draft_nosie_prob.*its fields are"):
        build_model(args, toy_tokenizer())


def _vanilla_nat_args(corpus, output_dir, overrides: dict, *extra: str) -> list[str]:
    args = _train_args(corpus, output_dir, 3, "--config_overrides", json.dumps(overrides), *extra)
    args[args.index("cmlm")] = "fertility_nat"
    return args


def test_training_script_trains_with_an_ar_teachers_hints(toy_corpus, tmp_path):
    teacher = toy_ar_model(toy_tokenizer())
    teacher.save_pretrained(tmp_path / "teacher")
    toy_tokenizer().save_pretrained(tmp_path / "teacher")
    hints = {"decoder_input": "uniform_copy", "hint_hidden_weight": 1.0, "hint_alignment_weight": 1.0}
    main(_vanilla_nat_args(toy_corpus, tmp_path / "hinted", hints, "--hint_teacher", str(tmp_path / "teacher")))
    log = [json.loads(line) for line in (tmp_path / "hinted" / "train_log.jsonl").read_text().splitlines()]
    assert all("hint_hidden" in record and "hint_alignment" in record for record in log if "loss" in record)
    assert any("loss" in record for record in log)
    # the saved student holds no teacher weights, and loads as a plain vanilla NAT
    assert not any(name.startswith("_hint") for name in _weights(tmp_path / "hinted"))


def test_hint_teacher_mismatches_are_refused_before_training(toy_corpus, tmp_path):
    uniform = {"decoder_input": "uniform_copy"}
    hints = {**uniform, "hint_alignment_weight": 1.0}
    with pytest.raises(ValueError, match="need `--hint_teacher"):
        main(_vanilla_nat_args(toy_corpus, tmp_path / "a", hints))
    with pytest.raises(ValueError, match="enables no hint"):
        main(_vanilla_nat_args(toy_corpus, tmp_path / "b", uniform, "--hint_teacher", str(tmp_path)))
    with pytest.raises(FileNotFoundError, match="--hint_teacher"):
        main(_vanilla_nat_args(toy_corpus, tmp_path / "c", hints, "--hint_teacher", str(tmp_path / "none")))
    other = PreTrainedTokenizerFast(tokenizer_object=toy_tokenizer().backend_tokenizer, pad_token="<pad>")
    other.add_tokens(["extra"])
    toy_ar_model(toy_tokenizer(), vocab_size=len(other)).save_pretrained(tmp_path / "other")
    other.save_pretrained(tmp_path / "other")
    with pytest.raises(ValueError, match="tokenizer differs.*Hints need"):
        main(_vanilla_nat_args(toy_corpus, tmp_path / "d", hints, "--hint_teacher", str(tmp_path / "other")))
    assert not (tmp_path / "d" / "checkpoints").exists()
