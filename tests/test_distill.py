"""Sequence-level distillation: complete, in order, resumable, split across processes, reusable."""

import json
from pathlib import Path

import pytest
import torch

from hf_nat import cli
from hf_nat import distillation as distill
from hf_nat.data import load_parallel_corpus
from tests.launch_helpers import launch_two_processes
from tests.toy import toy_ar_model, toy_sentences, toy_tokenizer

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A toy corpus in the Multi30k layout and an (untrained, fixed) AR teacher sharing the tokenizer."""
    root = tmp_path_factory.mktemp("distill")
    corpus = root / "corpus"
    corpus.mkdir()
    for split, n, seed in (("train", 37, 1), ("val", 5, 2)):
        sentences = toy_sentences(n, seed=seed)
        (corpus / f"{split}.xx").write_text("\n".join(sentences) + "\n")
        (corpus / f"{split}.yy").write_text("\n".join(sentences) + "\n")
    tokenizer = toy_tokenizer()
    teacher = toy_ar_model(tokenizer, seed=5)
    teacher.save_pretrained(root / "teacher")
    tokenizer.save_pretrained(root / "teacher")
    return root, corpus, teacher, tokenizer


def distill_args(root, corpus, out, *extra: str) -> list[str]:
    """`hf-nat distill`'s options for the toy teacher and corpus into ``out`` (3 beams, chunks of 8)."""
    folders = ["--teacher", str(root / "teacher"), "--data", str(corpus), "--output_dir", str(out)]
    return [
        *folders,
        *"--src xx --tgt yy --num_beams 3 --chunk_size 8 --max_length_a 0 --max_length_b 6".split(),
        *extra,
    ]


def run(root, corpus, out, *extra):
    return cli.main(["distill", *distill_args(root, corpus, out, *extra)])


def test_distilled_corpus_is_complete_in_order_and_matches_the_teacher(setup, tmp_path):
    root, corpus, teacher, tokenizer = setup
    summary = run(root, corpus, tmp_path / "out")
    assert summary["splits"]["train"]["sentences"] == 37
    saved = load_parallel_corpus(str(tmp_path / "out"), "xx", "yy", splits=["train", "val"])
    original = load_parallel_corpus(str(corpus), "xx", "yy", splits=["train", "val"])
    assert saved["train"]["source"] == original["train"]["source"]
    assert saved["val"]["target"] == original["val"]["target"]  # copied split keeps the references

    # Each distilled target is the teacher's own beam-search output for that sentence.
    batch = tokenizer(original["train"]["source"][:6], return_tensors="pt", padding=True)
    lengths = batch["attention_mask"].sum(1)
    expected = []
    for i in range(6):
        ids = batch["input_ids"][i : i + 1, : lengths[i]]
        out = teacher.generate(input_ids=ids, num_beams=3, max_length=7)
        expected.append(tokenizer.decode(out[0], skip_special_tokens=True).strip() or original["train"]["target"][i])
    assert saved["train"]["target"][:6] == expected
    assert summary["splits"]["train"]["targets_changed"] > 0


def test_killed_run_resumes_and_redoes_only_missing_work(setup, tmp_path):
    root, corpus, _, _ = setup
    out = tmp_path / "out"
    first = run(root, corpus, out)
    reference = load_parallel_corpus(str(out), "xx", "yy", splits=["train"])["train"]["target"]
    work = out / "work" / "train"
    (work / "chunk_00001.json").unlink()  # never written (killed before it finished)
    (work / "chunk_00003.json").write_text('{"indices": [1, 2')  # cut short
    second = run(root, corpus, out)
    assert first["sentences_translated_this_run"] == 37
    assert second["sentences_translated_this_run"] == 16  # two chunks of 8
    assert load_parallel_corpus(str(out), "xx", "yy", splits=["train"])["train"]["target"] == reference


def test_resume_with_other_settings_is_refused(setup, tmp_path):
    root, corpus, _, _ = setup
    run(root, corpus, tmp_path / "out")
    with pytest.raises(ValueError, match="other settings"):
        run(root, corpus, tmp_path / "out", "--num_beams", "2")


def test_teacher_with_another_tokenizer_fails_before_decoding(setup, tmp_path, monkeypatch):
    root, corpus, _, tokenizer = setup
    student = tmp_path / "student_tok"
    other = toy_tokenizer()
    other.add_tokens(["w99"])
    other.save_pretrained(student)
    monkeypatch.setattr(distill, "translate_chunk", lambda *a: pytest.fail("decoded before the check"))
    with pytest.raises(ValueError, match="tokenizer differs"):
        run(root, corpus, tmp_path / "out", "--student_tokenizer", str(student))


def test_two_processes_give_the_same_corpus_as_one(setup, tmp_path):
    root, corpus, _, _ = setup
    run(root, corpus, tmp_path / "one")
    launch_two_processes(
        [str(REPO / "training" / "distill.py"), *distill_args(root, corpus, tmp_path / "two")], tmp_path
    )
    summary = json.loads((tmp_path / "two" / "distill_summary.json").read_text())
    assert summary["processes"] == 2 and summary["sentences_translated_this_run"] == 37
    one = load_parallel_corpus(str(tmp_path / "one"), "xx", "yy", splits=["train"])["train"]["target"]
    two = load_parallel_corpus(str(tmp_path / "two"), "xx", "yy", splits=["train"])["train"]["target"]
    assert one == two
    assert torch.tensor([len(t) > 0 for t in two]).all()


@pytest.mark.parametrize(
    "changed, setting",
    [
        (["--dtype", "bfloat16"], "dtype"),
        (["--max_tokens", "64"], "max_tokens"),
        (["--max_sentences", "4"], "max_sentences"),
    ],
)
def test_resume_with_another_precision_or_batching_is_refused(setup, tmp_path, changed, setting):
    # Each changes the teacher's outputs (precision, padding within a batch): a resumed run would
    # mix two kinds of targets in one corpus.
    root, corpus, _, _ = setup
    run(root, corpus, tmp_path / "out", "--limit", "8")
    with pytest.raises(ValueError, match=rf"other settings.*\b{setting}\b"):
        run(root, corpus, tmp_path / "out", "--limit", "8", *changed)


def test_resume_with_a_retrained_teacher_in_the_same_folder_is_refused(setup, tmp_path):
    # best/ of a training run is replaced whenever validation improves: same path, other teacher.
    root, corpus, _, tokenizer = setup
    teacher = tmp_path / "teacher"
    toy_ar_model(tokenizer, seed=5).save_pretrained(teacher)
    tokenizer.save_pretrained(teacher)
    args = [
        "--teacher",
        str(teacher),
        "--data",
        str(corpus),
        "--src",
        "xx",
        "--tgt",
        "yy",
        "--output_dir",
        str(tmp_path / "out"),
        "--num_beams",
        "2",
        "--limit",
        "8",
        "--max_length_a",
        "0",
        "--max_length_b",
        "4",
    ]
    cli.main(["distill", *args])
    toy_ar_model(tokenizer, seed=6).save_pretrained(teacher)
    with pytest.raises(ValueError, match=r"other settings.*teacher_weights"):
        cli.main(["distill", *args])
