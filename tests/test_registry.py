"""The family registry and the module layout: families register themselves, shared code lists none,
the package re-exports every module's ``__all__``, a family's export ships only the files it
imports, configs are strict but accept what transformers writes, rapidfuzz is optional."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers.dynamic_module_utils import get_imports

import hf_nat
from hf_nat import hub_export
from hf_nat.models import levenshtein_oracle, nat_registry
from hf_nat.models.nat_layers import TokenEmbedding
from tests.toy import toy_shape, toy_tokenizer

MODELS = Path(hf_nat.models.__file__).parent

# Every name `from hf_nat import …` offered before families registered themselves.
NAMES_BEFORE = [
    "CMLMConfig",
    "CMLMForConditionalGeneration",
    "CMLMModel",
    "CMLMPreTrainedModel",
    "CTCNATConfig",
    "CTCNATForConditionalGeneration",
    "CTCNATModel",
    "CTCNATPreTrainedModel",
    "FertilityNATConfig",
    "FertilityNATForConditionalGeneration",
    "FertilityNATModel",
    "FertilityNATPreTrainedModel",
    "ImputerConfig",
    "ImputerForConditionalGeneration",
    "ImputerModel",
    "ImputerPreTrainedModel",
    "InsertionTransformerConfig",
    "InsertionTransformerForConditionalGeneration",
    "InsertionTransformerModel",
    "InsertionTransformerPreTrainedModel",
    "IterativeNATConfig",
    "IterativeNATForConditionalGeneration",
    "IterativeNATModel",
    "IterativeNATPreTrainedModel",
    "LevenshteinConfig",
    "LevenshteinModel",
    "LevenshteinPreTrainedModel",
    "LevenshteinTransformerForConditionalGeneration",
    "NATConfig",
    "NATGenerateOutput",
    "NATGenerationMixin",
    "NATModel",
    "NATPreTrainedModel",
    "NATTranslationPipeline",
    "FAMILIES",
    "register_all",
]


def test_every_family_is_registered_under_its_model_type():
    assert hf_nat.FAMILIES is nat_registry.FAMILIES
    assert set(hf_nat.FAMILIES) == {
        "cmlm",
        "ctc_nat",
        "da_transformer",
        "imputer",
        "fertility_nat",
        "iterative_nat",
        "levenshtein_transformer",
        "insertion_transformer",
        "kermit",
    }
    for model_type, family in hf_nat.FAMILIES.items():
        assert family.model_type == model_type == family.config_class.model_type
        assert family.head_class.config_class is family.config_class
        assert family.base_class.config_class is family.config_class
        assert hf_nat.family_of(model_type) is family


def test_family_of_an_unknown_model_type_lists_the_known_ones():
    with pytest.raises(ValueError, match="no_such_family") as error:
        hf_nat.family_of("no_such_family")
    assert all(repr(model_type) in str(error.value) for model_type in hf_nat.FAMILIES)


def test_a_second_class_cannot_take_a_registered_model_type():
    cmlm = hf_nat.family_of("cmlm")
    impostor = type("CMLMForConditionalGeneration", (), {"config_class": hf_nat.CMLMConfig, "__module__": "elsewhere"})
    with pytest.raises(ValueError, match="already registered"):
        nat_registry.register_family(base_class=cmlm.base_class, benchmark_settings=[{}])(impostor)
    # The same class registering again (e.g. a module reloaded) is fine.
    register_again = nat_registry.register_family(
        base_class=cmlm.base_class, benchmark_settings=cmlm.benchmark_settings
    )
    register_again(cmlm.head_class)
    assert hf_nat.family_of("cmlm").head_class is cmlm.head_class


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    names |= {("." * node.level) + (node.module or "") for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    return names


def test_the_registry_imports_nothing_but_the_standard_library():
    assert all(name.split(".")[0] in sys.stdlib_module_names for name in _imported_modules(MODELS / "nat_registry.py"))


def test_shared_code_names_no_family():
    shared = [
        MODELS / "__init__.py",
        MODELS / "nat_generation.py",
        MODELS / "pipeline_translation.py",
        Path(hf_nat.registration.__file__),
    ]
    for family in hf_nat.FAMILIES.values():
        for name in (family.model_type, family.head_class.__name__, family.config_class.__name__):
            for path in shared:
                assert name not in path.read_text(), (name, path.name)


def test_the_package_re_exports_every_modules_all_and_every_name_it_had():
    for path in sorted(MODELS.glob("*.py")):
        if path.name == "__init__.py":
            continue
        module = sys.modules[f"hf_nat.models.{path.stem}"]
        assert isinstance(module.__all__, list), path.name
        for name in module.__all__:
            assert getattr(hf_nat, name) is getattr(module, name), (path.name, name)
    assert set(NAMES_BEFORE) | {"family_of"} <= set(hf_nat.__all__)


def code_file_names(model_type: str) -> set[str]:
    family = hf_nat.family_of(model_type)
    return {p.name for p in hub_export.code_files([family.config_class, family.base_class, family.head_class])}


def test_a_familys_export_ships_only_the_files_it_imports():
    cmlm = code_file_names("cmlm")
    assert {"modeling_cmlm.py", "configuration_cmlm.py", "nat_layers.py", "nat_noise.py"} <= cmlm
    assert not cmlm & {"modeling_ctc.py", "ctc_alignment.py", "nat_upsample.py", "nat_edits.py", "nat_copy.py"}
    iterative = code_file_names("iterative_nat")
    assert {"modeling_iterative_nat.py", "nat_copy.py", "nat_noise.py"} <= iterative
    assert not iterative & {"nat_edits.py", "nat_edit_mixin.py", "levenshtein_oracle.py", "nat_slot_loss.py"}
    assert {"nat_upsample.py", "modeling_ctc.py", "ctc_alignment.py"} <= code_file_names("imputer")
    assert {"nat_slot_loss.py", "nat_edits.py", "nat_edit_mixin.py"} <= code_file_names("insertion_transformer")


def test_the_embedding_owns_its_scale():
    tokenizer = toy_tokenizer()
    ids = torch.tensor([[7, 8, 9]])
    for scaled in (True, False):
        config = hf_nat.CMLMConfig(**toy_shape(tokenizer), scale_embedding=scaled)
        embed = TokenEmbedding(config, torch.nn.Embedding(config.vocab_size, config.d_model))
        factor = config.d_model**0.5 if scaled else 1.0
        assert torch.equal(embed.token_embeds(ids), embed.embed_tokens(ids) * factor)


def test_configs_accept_what_transformers_writes():
    bookkeeping = {
        "transformers_version": "5.0.0",
        "architectures": ["CMLMForConditionalGeneration"],
        "auto_map": {"AutoConfig": "configuration_cmlm.CMLMConfig"},
        "_name_or_path": "somewhere",
        "custom_pipelines": {"translation": {"impl": "pipeline_translation.NATTranslationPipeline"}},
        "torch_dtype": "float32",
        "model_type": "cmlm",
        "_commit_hash": None,
        "hidden_size": 32,
    }
    config = hf_nat.CMLMConfig(**bookkeeping)
    assert config.d_model == 32 and config.auto_map["AutoConfig"].endswith("CMLMConfig")
    with pytest.raises(ValueError, match="draft_nosie_prob.*did you mean 'draft_noise_prob'"):
        hf_nat.LevenshteinConfig(draft_nosie_prob=0.3)


def test_the_oracle_without_rapidfuzz_says_how_to_install_it(monkeypatch):
    # The import sits in a try block, which transformers' remote-code import check skips: an
    # exported Levenshtein checkpoint does not ask for rapidfuzz.
    assert "rapidfuzz" not in get_imports(levenshtein_oracle.__file__)
    monkeypatch.setattr(levenshtein_oracle, "Indel", None)
    with pytest.raises(ImportError, match=r'pip install "hf_nat\[train\]"'):
        levenshtein_oracle.edit_script([7, 8], [8])


BLOCK_RAPIDFUZZ = r"""
import importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "rapidfuzz" or name.startswith("rapidfuzz."):
            raise ImportError("rapidfuzz is blocked in this test")

sys.meta_path.insert(0, Block())
import torch, hf_nat
model = hf_nat.LevenshteinTransformerForConditionalGeneration(hf_nat.LevenshteinConfig(
    vocab_size=30, d_model=16, encoder_layers=1, decoder_layers=1, encoder_ffn_dim=16, decoder_ffn_dim=16)).eval()
model.generate(torch.tensor([[7, 8, 2]]))
try:
    model.train()(torch.tensor([[7, 8, 2]]), labels=torch.tensor([[7, 8, 2]]))
except ImportError as error:
    print("RAISED", error)
"""


def test_hf_nat_imports_and_decodes_without_rapidfuzz(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", BLOCK_RAPIDFUZZ], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "RAISED" in proc.stdout and 'pip install "hf_nat[train]"' in proc.stdout
