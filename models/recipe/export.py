"""Export the trained VisemeNet to ONNX, check it against torch, and start the model card."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
from corpus import native_role, prompt_voice, tts_engine  # noqa: E402
from network import HOP, SAMPLE_RATE, VisemeNet  # noqa: E402

from addon.core.visemes import PHONES, VISEMES  # noqa: E402

MODEL_NAME = "oris_visemes"


def training_sets(corpus: Path, left_out: set[str]) -> dict[str, dict[str, float]]:
    """Utterances and hours of each real-speech training set, a native voice apart (but the voices training left
    out), for the card."""
    sets: dict[str, dict[str, float]] = {}
    for file, group in (("real_train", lambda name: "speechocean762"), ("native_train", prompt_voice)):
        path = corpus / f"{file}.npz"
        if not path.exists():
            continue
        d = np.load(path)
        for name, samples in zip(d["names"], np.diff(d["offsets"])):
            if group(str(name)) in left_out:
                continue
            entry = sets.setdefault(group(str(name)), {"utterances": 0, "hours": 0.0})
            entry["utterances"] += 1
            entry["hours"] += float(samples) / SAMPLE_RATE / 3600
    return {k: {"utterances": v["utterances"], "hours": round(v["hours"], 2)} for k, v in sorted(sets.items())}


def native_dev_prompts(corpus: Path, left_out: set[str]) -> int:
    """How many prompts of the training voices train.py kept for development (corpus.native_dev)."""
    path = corpus / "native_train.npz"
    if not path.exists():
        return 0
    return sum(native_role(str(n), left_out) == "dev" for n in np.load(path)["names"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--weights", type=Path, default=ROOT / "models" / ".cache" / "train" / "best.pt")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "models")
    ap.add_argument("--corpus", type=Path, default=ROOT / "models" / ".cache" / "corpus", help="the corpus it was trained on")
    args = ap.parse_args(argv)

    train_log = args.weights.parent / "train_log.json"
    trained = json.loads(train_log.read_text()) if train_log.exists() else {}
    model = VisemeNet(sliding_mean_frames=trained.get("sliding_mean_frames", 0))
    model.load_state_dict(torch.load(args.weights, map_location="cpu"))
    model.eval()
    onnx_path = args.out_dir / f"{MODEL_NAME}.onnx"
    dummy = torch.zeros(1, SAMPLE_RATE * 2)
    torch.onnx.export(
        model, (dummy,), str(onnx_path), input_names=["audio"], output_names=["visemes", "phones"],
        dynamic_axes={"audio": {0: "batch", 1: "samples"}, "visemes": {0: "batch", 1: "frames"},
                      "phones": {0: "batch", 1: "frames"}},
        opset_version=17, dynamo=False,
    )

    # The exported graph must agree with torch on audio of an unseen length.
    rng = np.random.default_rng(1)
    audio = (rng.standard_normal((1, 16000 * 3 + 77)) * 0.1).astype(np.float32)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    onnx_vis, onnx_ph = sess.run(None, {"audio": audio})
    with torch.no_grad():
        torch_vis, torch_ph = model(torch.tensor(audio))
    assert onnx_vis.shape == (1, audio.shape[1] // HOP + 1, len(VISEMES)), onnx_vis.shape
    err = float(np.abs(onnx_vis - torch_vis.numpy()).max())
    assert err < 1e-3, f"ONNX and torch disagree by {err}"

    digest = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    card_path = args.out_dir / f"{MODEL_NAME}.json"
    card = json.loads(card_path.read_text()) if card_path.exists() else {}
    card.update({
        "name": MODEL_NAME,
        "contract_version": 1,
        "file": onnx_path.name,
        "sha256": digest,
        "bytes": onnx_path.stat().st_size,
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "input": {"name": "audio", "dtype": "float32", "shape": ["batch", "samples"], "sample_rate": SAMPLE_RATE,
                  "range": [-1.0, 1.0], "channels": 1},
        "outputs": {
            "visemes": {"dtype": "float32", "shape": ["batch", "frames", len(VISEMES)], "kind": "logits",
                        "classes": list(VISEMES)},
            "phones": {"dtype": "float32", "shape": ["batch", "frames", len(PHONES)], "kind": "logits",
                       "classes": list(PHONES)},
        },
        "frame_rate": SAMPLE_RATE // HOP,
        "frame_centre": "frame t is centred on sample t*160 (t*10 ms); N samples give N//160 + 1 frames",
        "receptive_field_note": "bidirectional GRU: process long audio in chunks with >= 1 s of context each side",
        "training": trained,
    })
    tts_train = args.corpus / "tts_train.npz"
    if tts_train.exists():
        engines = Counter(tts_engine(str(name)) for name in np.load(tts_train)["names"])
        card["training"]["tts_utterances"] = dict(sorted(engines.items()))
    left_out = set(card["training"].get("voices_left_out", []))
    card["training"]["real_speech"] = training_sets(args.corpus, left_out)
    card["training"]["native_dev_prompts"] = native_dev_prompts(args.corpus, left_out)
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    print(f"exported {onnx_path} ({onnx_path.stat().st_size / 1e6:.2f} MB, sha256 {digest[:12]}..., max |onnx-torch| {err:.2e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
