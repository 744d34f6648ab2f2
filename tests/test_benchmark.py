"""End-to-end test of the benchmark (`hf-nat benchmark`) on a tiny random Marian model."""

from __future__ import annotations

import gzip
import json
import os
import types
from typing import Any

import pytest
import torch

from hf_nat import benchmark as bench
from hf_nat import cli
from hf_nat.loading import LoadedModel, load_model
from hf_nat.metrics.output_stats import count_tokens, repetition_rate
from hf_nat.provenance import model_fingerprint

SENTENCES = [
    "a man rides a red bike",
    "two dogs play in the snow",
    "a woman sings",
    "children are playing football on a green field near the old house",
    "a cat sleeps on the sofa",
    "the boy eats an apple",
    "people walk down a busy street in the city at night",
    "a dog",
    "a girl reads a book in the park",
]


class CopyNat(torch.nn.Module):
    """Stand-in NAT model: 'translates' by copying the source ids."""

    is_nat = True

    def __init__(self) -> None:
        super().__init__()
        self.rescorers_seen: list = []
        self.config = types.SimpleNamespace(model_type="copy")

    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        max_iterations: int = 1,
        length_beam: int = 1,
        return_dict_in_generate: bool = True,
        rescorer: Any = None,
    ) -> Any:
        """Return the source (tokens, eos, pad) and a constant iteration count."""
        self.rescorers_seen.append(rescorer)
        iterations = torch.full((input_ids.shape[0],), max_iterations, dtype=torch.long)
        return types.SimpleNamespace(sequences=input_ids.clone(), iterations=iterations)


def _make_tokenizer() -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.train_from_iterator(SENTENCES, trainers.WordLevelTrainer(special_tokens=["<pad>", "</s>", "<unk>"]))
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", tok.token_to_id("</s>"))]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from transformers import MarianConfig, MarianMTModel

    root = tmp_path_factory.mktemp("bench")
    tokenizer = _make_tokenizer()
    config = MarianConfig(
        vocab_size=len(tokenizer),
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model_dir = root / "tiny-marian"
    MarianMTModel(config).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)

    data_dir = root / "data"
    data_dir.mkdir()
    for lang in ("xx", "yy"):  # target == source, so a copying model scores BLEU 100
        with gzip.open(data_dir / f"test.{lang}.gz", "wt", encoding="utf-8") as f:
            f.write("\n".join(SENTENCES) + "\n")
    return {"model": str(model_dir), "data": str(data_dir), "out": str(root / "results")}


def test_repetition_rate() -> None:
    assert repetition_rate([[5, 5, 6, 7], [8, 8, 8]]) == pytest.approx(3 / 5)
    # specials (eos=1, pad=0) are dropped before pairing: (5 9) (9 9 4) -> 1 repeat in 3 pairs
    assert repetition_rate([[5, 9, 1, 0, 0], [9, 9, 4, 1]], {0, 1}) == pytest.approx(1 / 3)
    assert repetition_rate([[4], []], {0}) == 0.0
    assert repetition_rate([[3, 4, 5]]) == 0.0


def test_count_tokens() -> None:
    assert count_tokens([[5, 4, 4], [4, 1]], {4}) == 3
    assert count_tokens([[5, 6]], {4}) == 0


def test_setting_label_and_cli() -> None:
    assert bench.setting_label({"num_beams": 1}, is_nat=False) == "greedy"
    assert bench.setting_label({"num_beams": 5}, is_nat=False) == "beam5"
    assert bench.setting_label({"max_iterations": 4, "length_beam": 5}, is_nat=True) == "T=4 lb=5"
    args = cli.build_parser().parse_args(
        [
            "benchmark",
            "--models",
            "a",
            "b",
            "--baseline",
            "c",
            "--data_dir",
            "d",
            "--src",
            "en",
            "--tgt",
            "de",
            "--output_dir",
            "o",
            "--settings",
            '[{"max_iterations": 2}]',
        ]
    )
    assert args.models == ["a", "b"] and args.settings == [{"max_iterations": 2}]
    assert args.threads == 1 and args.latency_sentences == 200 and args.split == "test_2016_flickr"
    per_family = '{"ctc_nat": [{"num_candidates": 1}], "imputer": [{"max_iterations": 8}]}'
    assert cli._settings(per_family) == {"ctc_nat": [{"num_candidates": 1}], "imputer": [{"max_iterations": 8}]}
    with pytest.raises(Exception, match="family names"):
        cli._settings('{"ctc_nat": {"num_candidates": 1}}')


def tiny_benchmark(tiny_setup: dict[str, str], output_dir, **options) -> dict:
    """``run_benchmark`` on the tiny setup's data and baseline, small batches and few sentences
    unless ``options`` say otherwise."""
    defaults = dict(batch_size=4, max_sentences=4, latency_sentences=2, warmup=1)
    return bench.run_benchmark(
        baseline=tiny_setup["model"],
        data_dir=tiny_setup["data"],
        src="xx",
        tgt="yy",
        split="test",
        output_dir=str(output_dir),
        **{**defaults, **options},
    )


def test_run_benchmark(tiny_setup: dict[str, str]) -> None:
    copy_nat = CopyNat()

    def loader(path: str, device: str, dtype: str) -> Any:
        if path == "copy-nat":
            ar = load_model(tiny_setup["model"], device, dtype)
            return LoadedModel("copy-nat", path, copy_nat, ar.tokenizer, True)
        return load_model(path, device, dtype)

    out = tiny_setup["out"]
    results = bench.run_benchmark(
        models=[tiny_setup["model"], "copy-nat"],  # baseline listed again: no duplicate rows
        baseline=tiny_setup["model"],
        data_dir=tiny_setup["data"],
        src="xx",
        tgt="yy",
        split="test",
        output_dir=out,
        settings=[
            {"max_iterations": 1, "length_beam": 1},
            {"max_iterations": 4, "length_beam": 3},
            {"max_iterations": 1, "length_beam": 3, "rescore": True},
        ],
        batch_size=4,  # several length-sorted batches, to exercise the reordering
        max_sentences=8,
        latency_sentences=3,
        warmup=1,
        command="pytest",
        loader=loader,
    )
    for name in ("results.json", "results.md", "bleu_vs_speedup.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0
    with open(os.path.join(out, "results.json"), encoding="utf-8") as f:
        saved = json.load(f)
    assert saved["metadata"]["threads"] == 1 and saved["metadata"]["command"] == "pytest"
    assert saved["metadata"]["n_sentences"] == 8
    for key in ("torch", "cpu", "hostname", "git_commit", "date", "device"):
        assert saved["metadata"][key]

    rows = saved["rows"]
    assert [(r["model"], r["label"]) for r in rows] == [
        ("tiny-marian", "greedy"),
        ("tiny-marian", "beam5"),
        ("copy-nat", "T=1 lb=1"),
        ("copy-nat", "T=4 lb=3"),
        ("copy-nat", "T=1 lb=3 +AR rescoring"),
    ]
    # Only the rescoring setting hands the baseline (AR) model to generate().
    seen = {type(r).__name__ for r in copy_nat.rescorers_seen}
    assert seen == {"NoneType", "MarianMTModel"}
    assert rows[4]["setting"] == {"max_iterations": 1, "length_beam": 3, "rescore": True}
    assert rows == results["rows"]
    for r in rows:
        assert 0.0 <= r["bleu"] <= 100.0 + 1e-9 and 0.0 <= r["chrf"] <= 100.0 + 1e-9
        assert 0.0 <= r["repetition_rate"] <= 1.0
        assert r["leftover_special_tokens"] == 0
        assert r["latency_ms_median"] > 0 and r["latency_ms_p90"] >= r["latency_ms_median"]
        assert r["sents_per_s"] > 0 and r["speedup"] > 0 and r["throughput_ratio"] > 0
        assert r["n_sentences"] == 8 and r["latency_sentences"] == 3
        with open(os.path.join(out, r["hyps_file"]), encoding="utf-8") as f:
            assert len(f.read().splitlines()) == 8
    greedy = rows[0]
    assert greedy["speedup"] == 1.0 and greedy["throughput_ratio"] == 1.0
    assert greedy["mean_iterations"] >= 1 and greedy["iterations_unit"] == "decoder steps"

    # The copying model reproduces the references only if the original order is restored.
    nat = rows[2]
    assert nat["bleu"] == pytest.approx(100.0) and nat["repetition_rate"] == 0.0
    assert rows[3]["mean_iterations"] == 4.0
    with open(os.path.join(out, nat["hyps_file"]), encoding="utf-8") as f:
        assert f.read().splitlines() == SENTENCES[:8]

    md = open(os.path.join(out, "results.md"), encoding="utf-8").read()
    assert "| tiny-marian | pytorch | greedy |" in md and "| copy-nat | pytorch | T=4 lb=3 |" in md

    # Each row names the folder it measured and that folder's fingerprint; the stand-in has no folder.
    fingerprint = model_fingerprint(tiny_setup["model"])
    assert [(r["model_path"], r["model_fingerprint"]) for r in rows] == [(tiny_setup["model"], fingerprint)] * 2 + [
        ("copy-nat", None)
    ] * 3
    assert f"- model tiny-marian: `{tiny_setup['model']}`, fingerprint `{fingerprint}`" in md
    assert "- model copy-nat: `copy-nat`, fingerprint `not recorded`" in md


def test_settings_per_family(tiny_setup: dict[str, str], tmp_path) -> None:
    def loader(path: str, device: str, dtype: str) -> Any:
        if path == "copy-nat":
            ar = load_model(tiny_setup["model"], device, dtype)
            return LoadedModel("copy-nat", path, CopyNat(), ar.tokenizer, True)
        return load_model(path, device, dtype)

    common = dict(models=["copy-nat"], ar_settings=[{"num_beams": 1}], loader=loader)
    results = tiny_benchmark(tiny_setup, tmp_path / "a", settings={"copy": [{"max_iterations": 2}]}, **common)
    assert [(r["model"], r["label"]) for r in results["rows"]] == [("tiny-marian", "greedy"), ("copy-nat", "T=2")]
    by_name = tiny_benchmark(
        tiny_setup,
        tmp_path / "c",
        settings={"copy": [{"max_iterations": 2}], "copy-nat": [{"max_iterations": 3}]},
        **common,
    )
    assert [r["label"] for r in by_name["rows"]] == ["greedy", "T=3"]
    with pytest.raises(ValueError, match="no list for copy-nat or its family 'copy'"):
        tiny_benchmark(tiny_setup, tmp_path / "b", settings={"cmlm": [{"max_iterations": 2}]}, **common)


def test_a_nat_model_runs_its_familys_declared_settings_by_default(tiny_setup: dict[str, str], tmp_path) -> None:
    import hf_nat
    from tests.toy import toy_shape, toy_tokenizer

    nat_tokenizer = toy_tokenizer()
    head = hf_nat.FAMILIES["ctc_nat"].head_class
    torch.manual_seed(0)
    model = head(head.config_class(**toy_shape(nat_tokenizer))).eval()

    def loader(path: str, device: str, dtype: str) -> Any:
        if path == "toy-ctc":
            return LoadedModel("toy-ctc", path, model, nat_tokenizer, True)
        return load_model(path, device, dtype)

    results = tiny_benchmark(tiny_setup, tmp_path, models=["toy-ctc"], ar_settings=[{"num_beams": 1}], loader=loader)
    declared = list(hf_nat.FAMILIES["ctc_nat"].benchmark_settings)
    assert [r["setting"] for r in results["rows"] if r["kind"] == "nat"] == declared


def test_the_baseline_also_runs_on_ctranslate2_and_every_row_gets_ratios_to_its_int8_greedy(
    tiny_setup: dict[str, str], tmp_path
) -> None:
    results = tiny_benchmark(
        tiny_setup, tmp_path, models=[], max_sentences=6, engines=["ctranslate2-int8", "ctranslate2"]
    )
    rows = results["rows"]
    assert [(r["engine"], r["label"]) for r in rows] == [
        ("pytorch", "greedy"),
        ("pytorch", "beam5"),
        ("ctranslate2-int8", "greedy"),
        ("ctranslate2-int8", "beam5"),
        ("ctranslate2", "greedy"),
        ("ctranslate2", "beam5"),
    ]
    assert rows[2]["ct2_speedup"] == 1.0 and rows[2]["ct2_throughput_ratio"] == 1.0
    assert all(r["ct2_speedup"] > 0 and r["speedup"] > 0 for r in rows)
    # fp32 CTranslate2 decodes what transformers decodes (the converter keeps pad at id 0).
    for label in ("greedy", "beam5"):
        torch_file, ct2_file = (
            next(r["hyps_file"] for r in rows if r["label"] == label and r["engine"] == e)
            for e in ("pytorch", "ctranslate2")
        )
        assert open(tmp_path / torch_file).read() == open(tmp_path / ct2_file).read()
    assert "ctranslate2-int8 greedy" in results["metadata"]["ct2_reference"]
    assert "| tiny-marian | ctranslate2-int8 | greedy |" in open(tmp_path / "results.md").read()
    with pytest.raises(ValueError, match="unknown engine"):
        tiny_benchmark(tiny_setup, tmp_path / "x", models=[], engines=["tensorrt"])


def test_rows_read_back_from_results_json_keep_their_fields_and_refuse_unknown_ones() -> None:
    row = {
        "model": "m",
        "model_path": "p",
        "kind": "nat",
        "setting": {},
        "label": "T=1",
        "n_sentences": 1,
        "bleu": 1.0,
        "chrf": 2.0,
        "latency_ms_median": 1.0,
        "latency_ms_p90": 1.0,
        "latency_sentences": 1,
        "sents_per_s": 1.0,
        "decode_seconds": 1.0,
        "mean_iterations": 1.0,
        "iterations_unit": "x",
        "repetition_rate": 0.0,
    }
    parsed = bench.Row.from_dict(row)
    assert parsed.model_fingerprint is None and parsed.is_nat and parsed.bleu == 1.0
    with pytest.raises(ValueError, match="blue"):
        bench.Row.from_dict({**row, "blue": 3.0})


def _matched_or_beaten(points: list, i: int) -> bool:
    """Whether another point is at least as fast and as good as point i (an equal point counts if earlier)."""
    return any(
        p[0] >= points[i][0] and p[1] >= points[i][1] and (p != points[i] or j < i)
        for j, p in enumerate(points)
        if j != i
    )


def test_pareto_front_is_what_brute_force_keeps() -> None:
    from hf_nat.reports import pareto_front

    generator = torch.Generator().manual_seed(0)
    for _ in range(200):
        n = int(torch.randint(1, 8, (1,), generator=generator))
        points = [tuple(float(v) for v in torch.randint(0, 4, (2,), generator=generator)) for _ in range(n)]
        front = pareto_front(points)
        assert sorted(front) == [i for i in range(n) if not _matched_or_beaten(points, i)], points
        assert [points[i][0] for i in front] == sorted((points[i][0] for i in front), reverse=True)


def test_settings_on_the_val_front_feed_the_test_run() -> None:
    def row(model, setting, speedup, bleu, engine="pytorch"):
        return {"model": model, "kind": "nat", "engine": engine, "setting": setting, "speedup": speedup, "bleu": bleu}

    results = {
        "rows": [
            {"model": "ar", "kind": "ar", "engine": "pytorch", "setting": {"num_beams": 1}, "speedup": 1.0, "bleu": 30},
            row("cmlm", {"max_iterations": 1}, 4.0, 20.0),
            row("cmlm", {"max_iterations": 4}, 1.5, 29.0),
            row("cmlm", {"max_iterations": 10}, 0.5, 28.0),  # slower and worse than T=4: off the front
            row("cmlm", {"max_iterations": 2}, 9.0, 1.0, engine="onnxruntime"),  # another engine: ignored
            row("ctc", {}, 3.0, 25.0),
        ]
    }
    assert bench.settings_on_the_front(results) == {
        "cmlm": [{"max_iterations": 1}, {"max_iterations": 4}],
        "ctc": [{}],
    }
    with pytest.raises(ValueError, match="no NAT rows"):
        bench.settings_on_the_front({"rows": results["rows"][:1]})
