"""`hf-nat sweep`: one validation decode per option value, results files, best value."""

import gzip
import json

from hf_nat import cli


def test_sweep_writes_every_value_and_picks_the_best(toy, tmp_path):
    folder = tmp_path / "model"
    toy.model.save_pretrained(folder)
    toy.tokenizer.save_pretrained(folder)
    data = tmp_path / "data"
    data.mkdir()
    for lang in ("xx", "yy"):  # the copy task: the reference is the source
        with gzip.open(data / f"val.{lang}.gz", "wt", encoding="utf-8") as f:
            f.write("\n".join(toy.test_sentences[:16]) + "\n")
    prefix = tmp_path / "out" / "sweep"
    cli.main(
        [
            "sweep",
            "--model",
            str(folder),
            "--data_dir",
            str(data),
            "--src",
            "xx",
            "--tgt",
            "yy",
            "--option",
            "max_iterations",
            "--values",
            "1",
            "4",
            "--fixed",
            '{"length_beam": 2}',
            "--output",
            str(prefix),
            "--batch_size",
            "5",
        ]
    )
    report = json.loads((tmp_path / "out" / "sweep.json").read_text())
    assert [row["value"] for row in report["rows"]] == [1, 4]
    assert report["best_value"] == max(report["rows"], key=lambda row: row["bleu"])["value"]
    assert all(row["bleu"] > 50 and abs(row["length_ratio"] - 1) < 0.2 for row in report["rows"])
    assert "**best**" in (tmp_path / "out" / "sweep.md").read_text()
