"""The `hf-nat` command line: one entry for every job, `translate` like fairseq-interactive, and
errors that name the extra to install when an optional dependency is missing."""

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hf_nat import cli
from hf_nat.optional import require
from tests.family_checks import decode


@pytest.fixture(scope="module")
def saved_toy(toy_dir):
    return toy_dir


def test_every_job_is_a_command_of_the_installed_entry_point(toy, saved_toy):
    executable = shutil.which("hf-nat") or str(Path(sys.executable).with_name("hf-nat"))
    out = subprocess.run([executable, "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for command in (
        "train",
        "distill",
        "align",
        "benchmark",
        "sweep",
        "export",
        "export-onnx",
        "translate",
        "finetune",
        "demo",
    ):
        assert command in out.stdout
    sentence = toy.test_sentences[0]
    out = subprocess.run(
        [executable, "translate", "--model", str(saved_toy)],
        input=sentence + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0 and out.stderr == "", out.stderr
    assert out.stdout == decode(toy.model, toy.tokenizer, [sentence])[0] + "\n"


def test_translate_reads_lines_and_writes_the_models_translations_in_order(toy, saved_toy, tmp_path):
    sentences = toy.test_sentences[:7]
    source = tmp_path / "in.txt"
    source.write_text("\n".join(sentences[:3] + ["", "   "] + sentences[3:]) + "\n")
    target = tmp_path / "out.txt"
    count = cli.main(
        [
            "translate",
            "--model",
            str(saved_toy),
            "--input",
            str(source),
            "--output",
            str(target),
            "--batch_size",
            "2",
            "--buffer_size",
            "4",
            "--max_iterations",
            "2",
            "--length_beam",
            "1",
        ]
    )
    lines = target.read_text().split("\n")[:-1]
    assert count == 9 and len(lines) == 9
    expected = decode(toy.model, toy.tokenizer, sentences, max_iterations=2, length_beam=1)
    assert lines[:3] + lines[5:] == expected and lines[3:5] == ["", ""]


def test_translate_reads_standard_input(toy, saved_toy, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(toy.test_sentences[0] + "\n"))
    cli.main(["translate", "--model", str(saved_toy), "--adaptive", "true"])
    assert capsys.readouterr().out == decode(toy.model, toy.tokenizer, toy.test_sentences[:1], adaptive=True)[0] + "\n"


def test_translate_takes_the_familys_options_as_typed_flags_and_refuses_others(saved_toy, capsys):
    with pytest.raises(SystemExit):
        cli.main(["translate", "--model", str(saved_toy), "--max_iterations", "two"])
    with pytest.raises(SystemExit):
        cli.main(["translate", "--model", str(saved_toy), "--num_beams", "4"])  # an AR option, not CMLM's
    with pytest.raises(SystemExit):
        cli.main(["translate", "--model", str(saved_toy), "--help"])
    assert "--length_beam" in capsys.readouterr().out


def test_unknown_command_or_option_is_refused():
    with pytest.raises(SystemExit):
        cli.main(["trian"])
    with pytest.raises(SystemExit):
        cli.main(
            [
                "benchmark",
                "--baseline",
                "b",
                "--data_dir",
                "d",
                "--src",
                "en",
                "--tgt",
                "de",
                "--output_dir",
                "o",
                "--bogus",
                "1",
            ]
        )


def test_a_missing_optional_dependency_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "eflomal", None)  # makes `import eflomal` fail as if not installed
    with pytest.raises(ImportError, match=r'pip install "hf_nat\[align\]"'):
        require("eflomal", "fertility labels")
    with pytest.raises(ImportError, match=r"hf-nat align needs eflomal"):
        cli.main(["align", "--data", "d", "--tokenizer", "t", "--output", "o"])


BLOCK_OPTIONAL = r"""
import sys
for name in ("datasets", "accelerate", "evaluate", "sacrebleu", "matplotlib", "eflomal", "rapidfuzz", "jinja2"):
    sys.modules[name] = None  # `import name` fails and importlib.util.find_spec(name) is None: not installed
from transformers import pipeline
import hf_nat
translator = pipeline("translation", model=sys.argv[1])
print(translator(sys.argv[2], max_iterations=2)[0]["translation_text"])
"""


def test_translating_with_a_saved_model_needs_only_the_core(toy, saved_toy):
    """With every optional dependency unimportable, hf_nat still loads a saved model and translates."""
    sentence = toy.test_sentences[0]
    out = subprocess.run(
        [sys.executable, "-c", BLOCK_OPTIONAL, str(saved_toy), sentence], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == decode(toy.model, toy.tokenizer, [sentence], max_iterations=2)[0]


def test_translate_on_onnx_runtime_writes_what_pytorch_writes(toy, saved_toy, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(saved_toy, model_dir)
    sentences = toy.test_sentences[:5] + [""]
    source = tmp_path / "in.txt"
    source.write_text("\n".join(sentences) + "\n")
    outputs = {}
    for engine in ("pytorch", "onnxruntime", "onnxruntime-int8"):
        target = tmp_path / f"{engine}.txt"
        args = ["translate", "--model", str(model_dir), "--input", str(source), "--output", str(target)]
        cli.main([*args, "--engine", engine, "--max_iterations", "3"])
        outputs[engine] = target.read_text().split("\n")[:-1]
    assert outputs["onnxruntime"] == outputs["pytorch"]
    assert len(outputs["onnxruntime-int8"]) == len(sentences) and outputs["onnxruntime-int8"][-1] == ""
    assert (model_dir / "onnx_config.json").is_file()  # exported beside the weights on first use
    with pytest.raises(SystemExit, match="engine ctranslate2 does not run NAT models"):
        cli.main(["translate", "--model", str(model_dir), "--input", str(source), "--engine", "ctranslate2"])
