"""Audio sources: CTC NAT and the Imputer on log-mel features, and the speech recognition pipeline."""

import numpy as np
import pytest
import soundfile
import torch
from transformers import AutoFeatureExtractor, AutoModelForSpeechSeq2Seq, AutoProcessor, Speech2TextProcessor, pipeline

from hf_nat import CMLMConfig
from hf_nat.models import (
    CTCNATConfig,
    CTCNATForConditionalGeneration,
    ImputerConfig,
    ImputerForConditionalGeneration,
    merge_chunk_transcripts,
    read_audio,
)
from tests.speech_toy import (
    RATE,
    held_out,
    make_training_batches,
    speak,
    speech_batch,
    speech_shape,
    toy_feature_extractor,
    transcribe,
    word_accuracy,
)
from tests.toy import toy_sentences, toy_tokenizer, train_toy_model

FAMILIES = [(CTCNATConfig, CTCNATForConditionalGeneration), (ImputerConfig, ImputerForConditionalGeneration)]


@pytest.fixture(scope="module")
def tokenizer():
    return toy_tokenizer()


@pytest.fixture(scope="module")
def extractor():
    return toy_feature_extractor()


def untrained(config_class, model_class, tokenizer, **overrides):
    torch.manual_seed(0)
    return model_class(config_class(**speech_shape(tokenizer, **overrides))).eval()


@pytest.fixture(scope="module")
def model_dir(tokenizer, extractor, tmp_path_factory):
    """An untrained audio CTC NAT saved with its tokenizer, feature extractor and processor."""
    folder = tmp_path_factory.mktemp("speech") / "ctc"
    model = untrained(CTCNATConfig, CTCNATForConditionalGeneration, tokenizer)
    model.save_pretrained(folder)
    Speech2TextProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)
    extractor.save_pretrained(folder)
    return folder


@pytest.mark.learning
@pytest.mark.parametrize("config_class, model_class", FAMILIES, ids=["ctc_nat", "imputer"])
def test_a_toy_speech_task_is_learned(config_class, model_class, tokenizer, extractor):
    sentences, seeds = held_out()
    model = untrained(config_class, model_class, tokenizer)
    model.train()

    def learned(m) -> bool:
        return word_accuracy(transcribe(m, extractor, tokenizer, sentences, seeds), sentences) >= 0.9

    train_toy_model(model, make_training_batches(extractor, tokenizer), steps=800, until=learned, check_every=50)
    assert word_accuracy(transcribe(model, extractor, tokenizer, sentences, seeds), sentences) >= 0.75
    if model_class is ImputerForConditionalGeneration:
        for steps in (1, 2, 4):
            hyps = transcribe(model, extractor, tokenizer, sentences, seeds, max_iterations=steps)
            assert word_accuracy(hyps, sentences) >= 0.6, steps


@pytest.mark.parametrize("config_class, model_class", FAMILIES, ids=["ctc_nat", "imputer"])
def test_batch_invariance_with_silent_empty_and_long_clips(config_class, model_class, tokenizer, extractor):
    model = untrained(config_class, model_class, tokenizer)
    clips = [speak("w1 w2 w3", 0), np.zeros(RATE // 2, np.float32), speak(" ".join(["w4"] * 14), 1), speak("w5", 2)]
    batch = extractor(clips, sampling_rate=RATE, padding=True, return_attention_mask=True, return_tensors="pt")
    assert torch.isfinite(batch["input_features"]).all()  # a silent clip stays finite
    together = model.generate(**batch)
    for i, clip in enumerate(clips):
        alone = model.generate(**extractor(clip, sampling_rate=RATE, return_tensors="pt", return_attention_mask=True))
        assert together[i, : alone.shape[1]].tolist() == alone[0].tolist()
    # a row without frames (a 0-length clip in a padded batch) transcribes to nothing
    mask = batch["attention_mask"].clone()
    mask[1] = 0
    out = model.generate(input_features=batch["input_features"], attention_mask=mask)
    assert out[1].tolist()[0] == tokenizer.eos_token_id


def test_loss_trains_on_features_and_names_its_parts(tokenizer, extractor):
    model = untrained(ImputerConfig, ImputerForConditionalGeneration, tokenizer).train()
    batch = speech_batch(extractor, tokenizer, toy_sentences(4, seed=1, max_len=4), range(4))
    out = model(**batch, generator=torch.Generator().manual_seed(0))
    assert set(out.losses) == {"ctc", "impute", "infeasible"} and torch.isfinite(out.loss)
    out.loss.backward()
    assert model.model.encoder.embed.convs[0].weight.grad.abs().sum() > 0


def test_wrong_inputs_are_clear_errors(tokenizer, extractor):
    model = untrained(CTCNATConfig, CTCNATForConditionalGeneration, tokenizer)
    features = torch.randn(1, 20, 40)
    with pytest.raises(ValueError, match="reads audio sources"):
        model.generate(input_ids=torch.tensor([[7, 8, 2]]))
    with pytest.raises(ValueError, match=r"\(batch, frames, 40\)"):
        model.generate(input_features=torch.randn(1, 20, 80))
    with pytest.raises(ValueError, match="NaN or infinite"):
        model.generate(input_features=features.masked_fill(features > 1, float("nan")))
    with pytest.raises(ValueError, match="exceeds the model's"):
        model.generate(input_features=torch.randn(1, model.max_source_positions() + 1, 40))
    with pytest.raises(ValueError, match="source_modality='audio'"):
        CMLMConfig(source_modality="audio")
    with pytest.raises(ValueError, match="odd"):
        CTCNATConfig(source_modality="audio", subsampling_conv_kernel_size=4)


def test_feature_extractor_round_trips_with_the_model(model_dir, extractor):
    clip = speak("w3 w9", 5)
    expected = extractor(clip, sampling_rate=RATE, return_tensors="pt")["input_features"]
    reloaded = AutoFeatureExtractor.from_pretrained(model_dir)
    assert torch.equal(reloaded(clip, sampling_rate=RATE, return_tensors="pt")["input_features"], expected)
    processor = AutoProcessor.from_pretrained(model_dir)
    assert torch.equal(processor(audio=clip, sampling_rate=RATE, return_tensors="pt")["input_features"], expected)
    assert processor.tokenizer.get_vocab() == saved_vocab(model_dir)
    model = AutoModelForSpeechSeq2Seq.from_pretrained(model_dir)
    assert isinstance(model, CTCNATForConditionalGeneration) and model.main_input_name == "input_features"


def saved_vocab(folder):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder).get_vocab()


def test_pipeline_transcribes_a_path_an_array_a_dict_and_a_batch(model_dir, tokenizer, extractor, tmp_path):
    model = AutoModelForSpeechSeq2Seq.from_pretrained(model_dir).eval()
    asr = pipeline("automatic-speech-recognition", model=str(model_dir))
    clips = [speak("w1 w2", 3), speak("w7 w8 w9", 4)]
    expected = [
        tokenizer.decode(
            model.generate(**extractor(c, sampling_rate=RATE, return_tensors="pt", return_attention_mask=True))[0],
            skip_special_tokens=True,
        )
        for c in clips
    ]
    path = tmp_path / "clip.wav"
    soundfile.write(path, clips[0], RATE)
    assert asr(str(path)) == {"text": expected[0]}
    assert asr(clips[1]) == {"text": expected[1]}
    stereo_8k = {"array": np.stack([clips[0][::2], clips[0][::2]]), "sampling_rate": RATE // 2}
    assert isinstance(asr(stereo_8k)["text"], str)
    assert asr([clips[0], clips[1], np.zeros(0, np.float32)], batch_size=3) == [
        {"text": expected[0]},
        {"text": expected[1]},
        {"text": ""},
    ]
    assert asr([]) == []


def test_pipeline_chunks_audio_longer_than_the_positions(model_dir):
    asr = pipeline("automatic-speech-recognition", model=str(model_dir))
    long_clip = np.concatenate([speak("w1 w2 w3 w4", seed) for seed in range(6)])
    assert long_clip.size / RATE > asr._max_seconds()
    assert isinstance(asr(long_clip)["text"], str)


def test_pipeline_bad_audio_is_a_clear_error(model_dir, tmp_path):
    asr = pipeline("automatic-speech-recognition", model=str(model_dir))
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("not audio")
    with pytest.raises(ValueError, match="notes.wav is not an audio file"):
        asr(str(not_audio))
    with pytest.raises(FileNotFoundError, match="no audio file"):
        asr(str(tmp_path / "missing.wav"))
    with pytest.raises(ValueError, match="NaN or infinite"):
        asr(np.full(800, np.nan, np.float32))
    with pytest.raises(ValueError, match=r"beyond \[-1, 1\]"):
        asr(np.full(800, 3000.0, np.float32))


def test_read_audio_scales_integers_downmixes_and_resamples():
    pcm = np.array([0, 16384, -32768, 32767], dtype=np.int16)
    assert np.allclose(read_audio(pcm, RATE), [0.0, 0.5, -1.0, 32767 / 32768])
    stereo = np.stack([np.full(100, 0.2), np.full(100, 0.4)]).astype(np.float32)
    assert np.allclose(read_audio(stereo, RATE), 0.3)
    resampled = read_audio({"array": np.zeros(8000, np.float32), "sampling_rate": 8000}, RATE)
    assert resampled.shape == (16000,) and resampled.dtype == np.float32


def test_merge_chunk_transcripts_joins_on_the_overlap():
    assert merge_chunk_transcripts([[1, 2, 3, 4], [3, 4, 5, 6], [5, 6, 7]]) == [1, 2, 3, 4, 5, 6, 7]
    assert merge_chunk_transcripts([[1, 2], [8, 9]]) == [1, 2, 8, 9]  # no overlap: appended whole
    assert merge_chunk_transcripts([[1, 2, 3], [9, 2, 3, 4]]) == [1, 2, 3, 4]  # best share of agreement
    assert merge_chunk_transcripts([]) == [] and merge_chunk_transcripts([[5]]) == [5]


@pytest.mark.parametrize("config_class, model_class", FAMILIES, ids=["ctc_nat", "imputer"])
def test_onnx_runtime_transcribes_what_pytorch_does(config_class, model_class, tokenizer, extractor, tmp_path):
    from hf_nat.runtime.onnx import ORTNATModelForSeq2SeqLM, export_onnx

    model = untrained(config_class, model_class, tokenizer)
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    export_onnx(tmp_path, quantize=False)
    runtime = ORTNATModelForSeq2SeqLM.from_pretrained(tmp_path, quantized=False)
    clips = [speak("w1 w2 w3", 0), speak("w4", 1), np.zeros(RATE // 4, np.float32)]
    batch = extractor(clips, sampling_rate=RATE, padding=True, return_attention_mask=True, return_tensors="pt")
    assert runtime.generate(**batch).tolist() == model.generate(**batch).tolist()
