"""Speech corpora, `hf-nat train --task speech` (NAT and the Speech2Text baseline), the speech
benchmark and the export of a speech model, on the toy tone-chord language (no synthesiser needed;
the synthetic corpus builder itself is tested where espeak-ng and flite are installed)."""

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import torch
import torch.nn.functional as F
from safetensors import safe_open
from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor

from hf_nat.auxiliary_ctc import AuxiliaryCTC
from hf_nat.cli import main as cli
from hf_nat.data import special_token_ids
from hf_nat.data.speech import SpeechCollator, load_speech_corpus, speech_features
from hf_nat.data.synthetic_speech import SEEN_VOICES, UNSEEN_VOICE, build_speech_corpus, normalise_transcript
from hf_nat.model_builder import build_model
from tests.family_checks import LOAD_WITHOUT_HF_NAT
from tests.speech_toy import MEL_BINS, RATE, speak
from tests.toy import WORDS, toy_sentences, toy_tokenizer


def write_audiofolder(root, splits: dict[str, list[str]], seed: int = 0) -> None:
    """A toy corpus in the audiofolder layout: ``root/<split>/`` FLAC clips and metadata.csv."""
    for split, sentences in splits.items():
        folder = root / split
        folder.mkdir(parents=True)
        with open(folder / "metadata.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["file_name", "transcription"])
            for i, sentence in enumerate(sentences):
                spoken = " ".join(w for w in sentence.split() if w in WORDS) or "w0"  # the toy voice knows WORDS
                soundfile.write(folder / f"{i}.flac", speak(spoken, seed + i), RATE)
                writer.writerow([f"{i}.flac", sentence])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("speech_corpus")
    write_audiofolder(
        root,
        {
            "train": toy_sentences(48, seed=1, min_len=2, max_len=4),
            "validation": toy_sentences(6, seed=2, min_len=2, max_len=4),
            "test": toy_sentences(6, seed=3, min_len=2, max_len=4),
            "test_unseen_voice": toy_sentences(6, seed=3, min_len=2, max_len=4),
        },
    )
    toy_tokenizer().save_pretrained(root / "tokenizer")
    return root


def train_args(corpus, output_dir, model_type: str, *more: str) -> list[str]:
    return [
        "train", "--task", "speech", "--model_type", model_type, "--data", str(corpus),
        "--valid_split", "validation", "--tokenizer", str(corpus / "tokenizer"), "--output_dir", str(output_dir),
        "--num_mel_bins", str(MEL_BINS), "--d_model", "32", "--layers", "1", "--heads", "2", "--ffn_dim", "64",
        "--max_positions", "64", "--max_tokens", "4000", "--max_updates", "4", "--eval_every", "2",
        "--save_every", "2", "--no_progress", "--eval_generate_kwargs", '{"max_length": 20}' if model_type ==
        "speech2text" else "{}", *more,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    """A few updates of a CTC NAT and of the Speech2Text baseline on the toy corpus."""
    root = tmp_path_factory.mktemp("speech_runs")
    cli(train_args(corpus, root / "ctc", "ctc_nat", "--config_overrides", '{"upsample_ratio": 1}'))
    cli(train_args(corpus, root / "ar", "speech2text"))
    return root


def test_load_speech_corpus_reads_the_audiofolder_layout_and_drops_empty_transcripts(tmp_path):
    write_audiofolder(tmp_path, {"train": ["w1 w2", " ", "w3"]})
    corpus = load_speech_corpus(str(tmp_path), ["train"])
    assert corpus["train"]["target"] == ["w1 w2", "w3"]
    features = speech_features(corpus["train"]["audio"], _extractor())
    assert [f.shape[1] for f in features] == [MEL_BINS, MEL_BINS] and features[0].dtype == np.float32
    batch = SpeechCollator()([{"input_features": f, "labels": [7, 2]} for f in features])
    assert batch["attention_mask"].sum(1).tolist() == [len(f) for f in features]
    with pytest.raises(FileNotFoundError, match="no split folder 'test'"):
        load_speech_corpus(str(tmp_path), ["test"])
    os.remove(tmp_path / "train" / "0.flac")
    with pytest.raises(FileNotFoundError, match="missing audio files"):
        load_speech_corpus(str(tmp_path), ["train"])
    with pytest.raises(ValueError, match="needs columns 'file_name' and 'text'"):
        load_speech_corpus(str(tmp_path), ["train"], text_column="text")


def _extractor():
    from tests.speech_toy import toy_feature_extractor

    return toy_feature_extractor()


def test_a_too_short_clip_is_padded_and_a_too_long_one_is_left_out(tmp_path):
    extractor = _extractor()
    short, long = np.zeros(100, np.float32), np.zeros(RATE * 2, np.float32)
    features = speech_features([{"bytes": _flac(short), "path": None}, {"bytes": _flac(long), "path": None}], extractor,
                               max_frames=100)  # fmt: skip
    assert features[0].shape[0] >= 1 and features[1] is None


def _flac(samples) -> bytes:
    import io

    buffer = io.BytesIO()
    soundfile.write(buffer, samples, RATE, format="FLAC")
    return buffer.getvalue()


def test_train_task_speech_saves_a_processor_and_validates_by_wer(trained):
    for name in ("ctc", "ar"):
        summary = json.loads((trained / name / "summary.json").read_text())
        assert summary["updates"] == 4 and "best_valid_wer" in summary
        processor = AutoProcessor.from_pretrained(trained / name / "best")
        assert processor.feature_extractor.feature_size == MEL_BINS
        log = [json.loads(line) for line in (trained / name / "train_log.jsonl").read_text().splitlines()]
        assert [r["step"] for r in log if "valid_wer" in r] == [2, 4]
    model = AutoModelForSpeechSeq2Seq.from_pretrained(trained / "ar" / "best")
    assert model.config.model_type == "speech_to_text" and model.config.d_model == 32


def test_train_task_speech_resumes_from_its_checkpoint(corpus, tmp_path):
    out = tmp_path / "ctc"
    args = train_args(corpus, out, "ctc_nat", "--config_overrides", '{"upsample_ratio": 1}')
    cli(args)
    cli([*[a if a != "4" else "6" for a in args], "--resume"])
    assert json.loads((out / "summary.json").read_text())["updates"] == 6


@pytest.mark.parametrize(
    "model_type, more, message",
    [
        ("marian", [], "AR baseline for speech is 'speech2text'"),
        ("cmlm", [], "source_modality"),
        ("ctc_nat", ["--config_overrides", '{"num_mel_bins": 13}'], "which the corpus decides"),
    ],
)
def test_train_task_speech_rejects_models_that_cannot_read_audio(corpus, tmp_path, model_type, more, message):
    with pytest.raises(ValueError, match=message):
        cli(train_args(corpus, tmp_path / "run", model_type, *more))


def test_speech2text_with_auxiliary_ctc_trains_resumes_and_saves_a_plain_speech2text(corpus, tmp_path):
    out = tmp_path / "ar_ctc"
    args = train_args(corpus, out, "speech2text", "--ctc_weight", "0.3", "--subsampling_conv_layers", "3")
    cli(args)
    cli([*[a if a != "4" else "6" for a in args], "--resume"])
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert json.loads((out / "summary.json").read_text())["updates"] == 6
    assert all(np.isfinite(r["ctc"]) and np.isfinite(r["tokens"]) for r in log if "loss" in r)
    for folder in ("best", "final"):
        assert not [k for k in safe_open(out / folder / "model.safetensors", "pt").keys() if "ctc" in k]
        model = AutoModelForSpeechSeq2Seq.from_pretrained(out / folder)
        assert model.config.num_conv_layers == 3 and model.config.conv_kernel_sizes == [5, 5, 5]


def test_auxiliary_ctc_scores_each_clip_over_its_own_subsampled_states():
    """The CTC part equals torch's CTC computed clip by clip over the first states of that clip
    (as many as the convolutions leave of its own frames, not of the padded batch), with the
    targets stripped of eos: a mean per target token, then over clips."""
    torch.manual_seed(0)
    tokenizer = toy_tokenizer()
    ids = special_token_ids(tokenizer)
    model = build_model(
        argparse.Namespace(
            model_type="speech2text", config_overrides={}, ctc_weight=0.5, d_model=16, layers=1, heads=2,
            ffn_dim=32, dropout=0.0, max_positions=64,
        ),
        tokenizer,
        {"source_modality": "audio", "num_mel_bins": 8, "subsampling_conv_layers": 2},
    )  # fmt: skip
    wrapped = AuxiliaryCTC(model, 0.5, ids["blank"]).eval()
    frames, tokens = [40, 23, 9], [[5, 6, 7, ids["eos"]], [8, 8, ids["eos"]], [9, ids["eos"]]]
    batch = SpeechCollator()(
        [{"input_features": np.random.randn(n, 8).astype(np.float32), "labels": t} for n, t in zip(frames, tokens)]
    )
    _, parts = wrapped(**batch)
    states = model.get_encoder()(batch["input_features"], attention_mask=batch["attention_mask"]).last_hidden_state
    expected = []
    for row, (n, t) in enumerate(zip(frames, tokens)):
        own = ((n - 1) // 2) // 2 + 1  # two stride-2 convolutions, kernel 5, padding 2
        log_probs = wrapped.ctc_head(states[row : row + 1, :own]).log_softmax(-1).transpose(0, 1)  # (own, 1, vocab)
        target = torch.tensor([t[:-1]])
        expected.append(F.ctc_loss(log_probs, target, [own], [target.shape[1]], blank=ids["blank"]))
    torch.testing.assert_close(parts["ctc"], torch.stack(expected).mean(), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    "model_type, more, message",
    [
        ("ctc_nat", ["--ctc_weight", "0.3"], "AR speech baseline"),
        ("speech2text", ["--ctc_weight", "1"], r"must lie in \[0, 1\)"),
        ("speech2text", ["--config_overrides", '{"num_conv_layers": 1}'], "follows --subsampling_conv_layers"),
    ],
)
def test_speech2text_front_end_and_ctc_weight_are_checked(corpus, tmp_path, model_type, more, message):
    with pytest.raises(ValueError, match=message):
        cli(train_args(corpus, tmp_path / "run", model_type, *more))


def test_speech2text_needs_task_speech(tmp_path):
    with pytest.raises(ValueError, match="train it with --task speech"):
        cli(["train", "--model_type", "speech2text", "--output_dir", str(tmp_path / "x"), "--max_updates", "1"])


def test_speech_benchmark_writes_wer_and_speed_ratios(trained, corpus, tmp_path):
    from hf_nat.speech_benchmark import run_speech_benchmark

    results = run_speech_benchmark(
        [str(trained / "ctc" / "best")], str(trained / "ar" / "best"), str(corpus), ["test", "test_unseen_voice"],
        str(tmp_path), latency_clips=2, warmup=1,
    )  # fmt: skip
    labels = [(r["model"], r["label"]) for r in results["rows"]]
    assert labels == [("ar", "greedy"), ("ar", "beam5"), ("ctc", "one pass")]
    assert results["rows"][0]["speedup"] == 1.0 and results["rows"][0]["throughput_ratio"] == 1.0
    assert all(0 <= r["test"]["wer"] and r["test_unseen_voice"]["clips_per_s"] > 0 for r in results["rows"])
    for name in ("results.json", "results.md", "wer_vs_speedup.png"):
        assert (tmp_path / name).is_file()


SPEECH_EXPORT_CHECK = (
    LOAD_WITHOUT_HF_NAT.split("import torch\n", 1)[0]
    + r"""
import soundfile
import torch
from transformers import AutoModelForSpeechSeq2Seq, pipeline

folder, card_code = sys.argv[1], sys.argv[4]
torch.set_num_threads(1)
samples, _ = soundfile.read("clip.wav", dtype="float32")
exec(card_code, {"samples": samples})  # the model card's usage snippets, as a user would paste them
model = AutoModelForSpeechSeq2Seq.from_pretrained(folder, trust_remote_code=True)
asr = pipeline("automatic-speech-recognition", model=folder, trust_remote_code=True)
result = {
    "model_module": type(model).__module__,
    "pipeline": [asr("clip.wav"), asr([samples, samples])],
    "hf_nat_modules": sorted(m for m in sys.modules if m == "hf_nat" or m.startswith("hf_nat.")),
}
print("RESULT " + json.dumps(result))
"""
)


def test_export_of_a_speech_model_transcribes_where_hf_nat_cannot_be_imported(trained, corpus, tmp_path):
    from hf_nat.speech_benchmark import run_speech_benchmark

    model_dir = trained / "ctc" / "best"
    bench = tmp_path / "bench"
    run_speech_benchmark([str(model_dir)], str(trained / "ar" / "best"), str(corpus), ["test"], str(bench),
                         latency_clips=1, warmup=0)  # fmt: skip
    exported = tmp_path / "exported"
    cli(["export", "--model", str(model_dir), "--output_dir", str(exported), "--results", str(bench / "results.json")])
    card = (exported / "README.md").read_text()
    assert "pipeline_tag: automatic-speech-recognition" in card and "WER test" in card
    work = tmp_path / "work"
    work.mkdir()
    for name in ("clip.wav", "a.flac", "b.flac"):
        soundfile.write(work / name, speak("w1 w2", 5), RATE)
    card_code = "\n".join(part.split("```")[0] for part in card.split("```python\n")[1:])
    card_code = card_code.replace(f"path/to/{exported.name}", str(exported))
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "HF_MODULES_CACHE": str(tmp_path / "m"),
    }
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        [sys.executable, "-c", SPEECH_EXPORT_CHECK, str(exported), "[]", "{}", card_code],
        cwd=work, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert result["hf_nat_modules"] == [] and result["model_module"].startswith("transformers_modules.")
    single, batch = result["pipeline"]
    assert isinstance(single["text"], str) and batch == [single, single]


def test_normalise_transcript_keeps_what_is_spoken():
    assert normalise_transcript("A man's \"big\" hat, 'quoted' -- 2 dogs!") == "a man's big hat quoted 2 dogs"
    assert normalise_transcript("...") == ""


@pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("flite") is None,
    reason="espeak-ng and flite are not installed (apt-get install -y espeak-ng flite; the speech recipe does it)",
)
def test_synthetic_corpus_has_disjoint_splits_an_unseen_voice_and_resumes(tmp_path):
    sentences = {
        "train": ["A dog runs.", "Two men talk!", "A dog runs."],
        "validation": ["A cat sits.", "two men talk"],
        "test": ["People walk."],
    }
    info = build_speech_corpus(sentences, str(tmp_path), renditions=2, seed=0)
    corpus = load_speech_corpus(str(tmp_path), ["train", "validation", "test", "test_unseen_voice"])
    assert corpus["train"]["target"] == ["a dog runs", "a dog runs", "two men talk", "two men talk"]
    assert corpus["validation"]["target"] == ["a cat sits"]  # the sentence already in train is dropped
    assert corpus["test_unseen_voice"]["target"] == corpus["test"]["target"]
    with open(tmp_path / "train" / "metadata.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["voice"] != rows[1]["voice"] and {r["voice"] for r in rows} <= {str(v) for v in SEEN_VOICES}
    with open(tmp_path / "test_unseen_voice" / "metadata.csv") as handle:
        assert {r["voice"] for r in csv.DictReader(handle)} == {str(UNSEEN_VOICE)}
    assert info["splits"]["train"]["utterances"] == 4 and info["hours"] > 0
    before = os.path.getmtime(tmp_path / "train" / "metadata.csv")
    assert build_speech_corpus(sentences, str(tmp_path), renditions=2, seed=0)["splits"] == info["splits"]
    assert os.path.getmtime(tmp_path / "train" / "metadata.csv") == before
    with pytest.raises(ValueError, match="renditions"):
        build_speech_corpus(sentences, str(tmp_path / "x"), renditions=99)


def test_transcripts_with_characters_outside_the_tokenizer_are_counted(tmp_path, capsys):
    write_audiofolder(tmp_path / "corpus", {"train": ["w1 w2", "w3 qq", "w4"], "validation": ["w1 zz"]})
    toy_tokenizer().save_pretrained(tmp_path / "corpus" / "tokenizer")
    args = train_args(tmp_path / "corpus", tmp_path / "run", "ctc_nat", "--config_overrides", '{"upsample_ratio": 1}')
    cli([*[a if a != "4" else "1" for a in args]])
    assert "1 transcripts hold characters outside the tokenizer" in capsys.readouterr().out
