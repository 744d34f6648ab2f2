"""NAT models on ONNX Runtime behind the same ``generate()`` and ``pipeline("translation")``.

The seam is the module boundary. A family's decoding logic (initial hypotheses, refinement steps,
candidate scores, rescoring) stays the PyTorch code it is; only the dense parts run on ONNX Runtime:
every :class:`NATEncoder`, every :class:`NATDecoder` (with its cross-attention key/value
projection as a graph of its own, so refinement steps reuse it) and every ``nn.Linear`` outside
them (output projections, length predictor, fertility / deletion / insertion heads, upsampler).
The parts are found by walking the model, so a family that registers itself is exported without
being listed here.

:func:`export_onnx` writes one ``<module path>.onnx`` per part beside ``model.safetensors``
(dynamic batch and length), an int8 twin ``<module path>_quantized.onnx`` (ONNX Runtime's dynamic
quantisation: int8 weights, activations quantised per call) and ``onnx_config.json``.
:class:`ORTNATModelForSeq2SeqLM` loads the folder, as ``AutoModelForSeq2SeqLM`` does, and returns
the family's model whose parts' ``forward`` now call the ONNX Runtime sessions; every ONNX file
carries the fingerprint of the weights it was exported from, checked on load.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from hf_nat.files import write_json_atomic
from hf_nat.models.nat_layers import EncoderState, NATDecoder, NATEncoder
from hf_nat.optional import require
from hf_nat.provenance import model_fingerprint

__all__ = ["ONNX_CONFIG_NAME", "OPSET", "ORTNATModelForSeq2SeqLM", "OnnxPart", "export_onnx", "onnx_parts"]

ONNX_CONFIG_NAME = "onnx_config.json"
OPSET = 18
_FORMAT = 1
_FINGERPRINT_KEY = "hf_nat_fingerprint"
_PART_KEY = "hf_nat_part"
VARIANTS = ("fp32", "int8")


@dataclass(frozen=True)
class OnnxPart:
    """One module of a model that runs on ONNX Runtime: its path in ``named_modules()`` and kind
    (``encoder``, ``decoder``, ``cross_kv`` of a decoder, or ``linear``)."""

    path: str
    kind: str

    def file_name(self, variant: str) -> str:
        """The ONNX file of this part: ``<path>.onnx`` (fp32) or ``<path>_quantized.onnx`` (int8)."""
        suffix = "" if variant == "fp32" else "_quantized"
        name = self.path + (".cross_kv" if self.kind == "cross_kv" else "")
        return f"{name}{suffix}.onnx"


def onnx_parts(model: nn.Module) -> list[OnnxPart]:
    """The parts of ``model`` that run on ONNX Runtime, in ``named_modules()`` order: encoders,
    decoders with their cross-attention projections, and the linear layers outside both."""
    parts, inside = [], []
    for path, module in model.named_modules():
        if any(path.startswith(prefix + ".") for prefix in inside):
            continue
        if isinstance(module, NATEncoder):
            parts.append(OnnxPart(path, "encoder"))
            inside.append(path)
        elif isinstance(module, NATDecoder):
            parts += [OnnxPart(path, "decoder"), OnnxPart(path, "cross_kv")]
            inside.append(path)
        elif isinstance(module, nn.Linear):
            parts.append(OnnxPart(path, "linear"))
    return parts


# --- export ------------------------------------------------------------------------------------
class _EncoderGraph(nn.Module):
    def __init__(self, encoder: NATEncoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, source, attention_mask):
        hidden, keep = self.encoder(source, attention_mask)
        # A token source keeps its mask; a front end that shortens the source returns its own.
        return hidden if self.encoder.reads_tokens else (hidden, keep)


class _CrossKVGraph(nn.Module):
    def __init__(self, decoder: NATDecoder):
        super().__init__()
        self.decoder = decoder

    def forward(self, memory):
        return tuple(t for kv in self.decoder.cross_kv(memory) for t in kv)


class _DecoderGraph(nn.Module):
    def __init__(self, decoder: NATDecoder):
        super().__init__()
        self.decoder = decoder

    def forward(self, inputs_embeds, keep, memory_keep, *kv):
        kvs = tuple(zip(kv[0::2], kv[1::2]))
        return self.decoder(
            keep, EncoderState(hidden=None, keep=memory_keep, cross_kv=kvs), inputs_embeds=inputs_embeds
        )


def _graph_and_inputs(model: nn.Module, part: OnnxPart):
    """(module to trace, example inputs, input names, output names, dynamic axes) of one part."""
    module = model.get_submodule(part.path)
    config = model.config
    batch, source, target, d = 2, 5, 7, config.d_model
    if part.kind == "encoder":
        mask = torch.ones(batch, source, dtype=torch.long)
        if module.reads_tokens:
            names, outputs = ["input_ids", "attention_mask"], ["hidden"]
            example = torch.full((batch, source), 10, dtype=torch.long).clamp(max=config.vocab_size - 1)
        else:  # audio: feature frames, several per encoder state
            names, outputs = ["input_features", "attention_mask"], ["hidden", "keep"]
            source *= module.embed.frames_per_state
            example, mask = torch.randn(batch, source, config.num_mel_bins), torch.ones(batch, source, dtype=torch.long)
        axes = {names[0]: {0: "batch", 1: "source"}, "attention_mask": {0: "batch", 1: "source"}}
        axes.update({name: {0: "batch", 1: "states"} for name in outputs})
        return _EncoderGraph(module), (example, mask), names, outputs, axes
    if part.kind == "linear":
        x = torch.randn(batch * target, module.in_features)
        return module, (x,), ["x"], ["y"], {"x": {0: "rows"}, "y": {0: "rows"}}
    layers = len(module.layers)
    kv_names = [f"{name}_{i}" for i in range(layers) for name in ("key", "value")]
    heads = module.layers[0].cross_attn.num_heads
    kv_axes = {name: {0: "batch", 2: "source"} for name in kv_names}
    if part.kind == "cross_kv":
        memory = torch.randn(batch, source, d)
        return _CrossKVGraph(module), (memory,), ["memory"], kv_names, {"memory": {0: "batch", 1: "source"}, **kv_axes}
    kv = [torch.randn(batch, heads, source, d // heads) for _ in kv_names]
    inputs = (torch.randn(batch, target, d), torch.ones(batch, target, dtype=torch.bool))
    inputs += (torch.ones(batch, source, dtype=torch.bool), *kv)
    names = ["inputs_embeds", "keep", "memory_keep", *kv_names]
    axes = {"inputs_embeds": {0: "batch", 1: "target"}, "keep": {0: "batch", 1: "target"}}
    axes.update(memory_keep={0: "batch", 1: "source"}, states={0: "batch", 1: "target"}, **kv_axes)
    return _DecoderGraph(module), inputs, names, ["states"], axes


@contextlib.contextmanager
def _quiet_export():
    """Silence the tracer's warnings about Python values it records as constants (shape checks the
    stand-ins repeat) and the quantiser's advice to pre-process, which these graphs do not need."""
    root = logging.getLogger()
    level = root.level
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        root.setLevel(logging.ERROR)
        try:
            yield
        finally:
            root.setLevel(level)


def _export_part(model, part: OnnxPart, folder: Path, fingerprint: str, opset: int, quantize: bool) -> None:
    """Write ``part``'s fp32 ONNX file, stamped with ``fingerprint``, and with ``quantize`` its int8 twin."""
    onnx = require("onnx", "exporting a model to ONNX")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph, inputs, input_names, output_names, axes = _graph_and_inputs(model, part)
    fp32 = folder / part.file_name("fp32")
    with torch.no_grad():
        torch.onnx.export(
            graph,
            inputs,
            str(fp32),
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=axes,
            opset_version=opset,
            dynamo=False,
        )
    proto = onnx.load(str(fp32))
    for key, value in ((_FINGERPRINT_KEY, fingerprint), (_PART_KEY, f"{part.kind}:{part.path}")):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(fp32))
    if quantize:
        int8 = folder / part.file_name("int8")
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)


def export_onnx(model_dir: str | os.PathLike, quantize: bool = True, opset: int = OPSET) -> dict:
    """Export the NAT model saved in ``model_dir`` to ONNX beside its weights; return the manifest.

    Writes one fp32 file per :func:`onnx_parts` part (dynamic batch and lengths), with
    ``quantize`` its int8 twin (dynamic quantisation of every MatMul/Gemm: int8 weights), and
    ``onnx_config.json`` (parts, files, opset, versions, the weights' fingerprint). Each file holds
    the fingerprint in its metadata, so a file copied in from another model is caught on load.
    """
    onnx = require("onnx", "exporting a model to ONNX")
    ort = require("onnxruntime", "exporting a model to ONNX")
    from transformers import AutoModelForSeq2SeqLM

    import hf_nat  # noqa: F401  (registers the families)

    folder = Path(model_dir)
    fingerprint = model_fingerprint(folder)
    model = AutoModelForSeq2SeqLM.from_pretrained(folder).float().eval()
    if not getattr(model, "is_nat", False):
        raise ValueError(
            f"{folder} holds a {type(model).__name__}, not an hf_nat model; export AR models to CTranslate2"
        )
    parts = onnx_parts(model)
    with _quiet_export():
        for part in parts:
            _export_part(model, part, folder, fingerprint, opset, quantize)
    manifest = {
        "format": _FORMAT,
        "model_type": model.config.model_type,
        "fingerprint": fingerprint,
        "opset": opset,
        "exported_with": {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": ort.__version__},
        "parts": [
            {
                "path": p.path,
                "kind": p.kind,
                "files": {v: p.file_name(v) for v in (VARIANTS if quantize else VARIANTS[:1])},
            }
            for p in parts
        ],
    }
    write_json_atomic(folder / ONNX_CONFIG_NAME, manifest)
    return manifest


# --- runtime -----------------------------------------------------------------------------------
def _array(t: torch.Tensor):
    return t.detach().to("cpu").contiguous().numpy()


class _Session:
    """One ONNX Runtime session of a part, checked against the model it serves."""

    def __init__(self, path: Path, part: OnnxPart, fingerprint: str, opset: int, options, providers):
        ort = require("onnxruntime", "running a model on ONNX Runtime")
        if not path.is_file():
            raise FileNotFoundError(f"missing ONNX file {path} (run hf-nat export-onnx --model {path.parent})")
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        except Exception as error:  # ORT raises its own exception types (InvalidProtobuf, Fail, …)
            message = str(error)
            if "opset" in message.lower():
                raise RuntimeError(
                    f"{path} uses ONNX opset {opset}, which onnxruntime {ort.__version__} cannot run: {message}"
                ) from error
            raise OSError(f"corrupt or unreadable ONNX file {path}: {message}") from error
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get(_FINGERPRINT_KEY) != fingerprint:
            raise ValueError(
                f"{path} was exported from another model (fingerprint {meta.get(_FINGERPRINT_KEY) or 'none'}, "
                f"the weights beside it are {fingerprint}); export this model again"
            )
        if meta.get(_PART_KEY) != f"{part.kind}:{part.path}":
            raise ValueError(f"{path} holds part {meta.get(_PART_KEY)!r}, expected {part.kind}:{part.path}")
        self.input_names = [i.name for i in self.session.get_inputs()]

    def run(self, *inputs: torch.Tensor) -> list[torch.Tensor]:
        feeds = {name: _array(x) for name, x in zip(self.input_names, inputs)}
        return [torch.from_numpy(y) for y in self.session.run(None, feeds)]


def _encoder_forward(session: _Session, encoder: NATEncoder, d_model: int):
    def forward(source: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if source.numel() == 0:
            return torch.zeros(*source.shape[:2], d_model), attention_mask.bool()
        if encoder.reads_tokens:
            return session.run(source.long(), attention_mask.long())[0], attention_mask.bool()
        hidden, keep = session.run(source.float(), attention_mask.long())
        return hidden, keep.bool()

    return forward


def _cross_kv_forward(session: _Session, decoder: NATDecoder):
    heads = decoder.layers[0].cross_attn.num_heads

    def cross_kv(memory: torch.Tensor) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
        if memory.numel() == 0:
            empty = torch.zeros(memory.shape[0], heads, memory.shape[1], memory.shape[2] // heads)
            return tuple((empty, empty) for _ in decoder.layers)
        out = session.run(memory.float())
        return tuple(zip(out[0::2], out[1::2]))

    return cross_kv


def _decoder_forward(session: _Session, decoder: NATDecoder):
    embed = decoder.embed

    def forward(keep, encoder, input_ids=None, inputs_embeds=None) -> torch.Tensor:
        if inputs_embeds is None:
            inputs_embeds = embed.token_embeds(input_ids)
        if inputs_embeds.shape[1] > embed.max_positions:
            raise ValueError(
                f"sequence of {inputs_embeds.shape[1]} tokens is longer than the model's "
                f"max_position_embeddings={embed.max_positions}; truncate the input"
            )
        if inputs_embeds.numel() == 0 or encoder.keep.shape[1] == 0:
            return torch.zeros(inputs_embeds.shape, dtype=torch.float32)
        kvs = encoder.cross_kv if encoder.cross_kv is not None else decoder.cross_kv(encoder.hidden)
        flat = [t for kv in kvs for t in kv]
        return session.run(inputs_embeds.float(), keep.bool(), encoder.keep.bool(), *flat)[0]

    return forward


def _linear_forward(session: _Session, linear: nn.Linear):
    def forward(x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, linear.in_features)
        if rows.shape[0] == 0:
            return torch.zeros(*x.shape[:-1], linear.out_features)
        return session.run(rows.float())[0].view(*x.shape[:-1], linear.out_features)

    return forward


class ORTNATModelForSeq2SeqLM:
    """Load an hf_nat model folder to decode on ONNX Runtime, like ``AutoModelForSeq2SeqLM``:
    ``ORTNATModelForSeq2SeqLM.from_pretrained(folder)`` returns the family's model (e.g. a
    ``CTCNATForConditionalGeneration``) whose encoder, decoders and heads run the folder's ONNX
    files, so ``generate()`` with the family's options, rescoring and ``pipeline("translation")``
    work unchanged. ``model.onnx_runtime`` says which files are in use."""

    def __init__(self):
        raise TypeError("use ORTNATModelForSeq2SeqLM.from_pretrained(folder)")

    @classmethod
    def from_pretrained(
        cls,
        model_dir: str | os.PathLike,
        quantized: bool = False,
        threads: int | None = None,
        provider: str = "CPUExecutionProvider",
        export: bool = False,
    ):
        """The model in ``model_dir`` on ONNX Runtime: fp32 files, or their int8 twins with
        ``quantized``; ``threads`` intra-op threads (default torch's); ``export`` writes the ONNX
        files first when the folder has none."""
        from transformers import AutoModelForSeq2SeqLM

        import hf_nat  # noqa: F401

        ort = require("onnxruntime", "running a model on ONNX Runtime")
        folder = Path(model_dir)
        manifest_path = folder / ONNX_CONFIG_NAME
        if export and not manifest_path.is_file():
            export_onnx(folder, quantize=True)
        if not manifest_path.is_file():
            raise FileNotFoundError(
                f"no {ONNX_CONFIG_NAME} in {folder}: export the model first "
                f"(hf-nat export-onnx --model {folder}, or from_pretrained(..., export=True))"
            )
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            manifest["parts"], manifest["fingerprint"]
        except (ValueError, KeyError, TypeError) as error:
            raise OSError(f"corrupt {manifest_path}: {error}") from error
        fingerprint = model_fingerprint(folder)
        if manifest["fingerprint"] != fingerprint:
            raise ValueError(
                f"{manifest_path} describes another model (fingerprint {manifest['fingerprint']}, the "
                f"weights in {folder} are {fingerprint}); export this model again"
            )
        model = AutoModelForSeq2SeqLM.from_pretrained(folder).float().eval()
        variant = "int8" if quantized else "fp32"
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        expected = onnx_parts(model)
        listed = [OnnxPart(p["path"], p["kind"]) for p in manifest["parts"]]
        if listed != expected:
            raise ValueError(f"{manifest_path} lists parts {listed}, but {type(model).__name__} has {expected}")
        used = []
        for entry, part in zip(manifest["parts"], expected):
            name = entry["files"].get(variant)
            if name is None:
                raise FileNotFoundError(
                    f"{folder} has no {variant} ONNX file of {part.path} (export with quantize=True)"
                )
            session = _Session(folder / name, part, fingerprint, manifest.get("opset", OPSET), options, [provider])
            module = model.get_submodule(part.path)
            if part.kind == "encoder":
                module.forward = _encoder_forward(session, module, model.config.d_model)
            elif part.kind == "cross_kv":
                module.cross_kv = _cross_kv_forward(session, module)
            elif part.kind == "decoder":
                module.forward = _decoder_forward(session, module)
            else:
                module.forward = _linear_forward(session, module)
            used.append(name)
        model.onnx_runtime = {"variant": variant, "files": used, "threads": options.intra_op_num_threads}
        return model
