"""Load the weights of an exported oris_visemes.onnx back into VisemeNet (for fine-tuning, train.py --init-from).

The export folds each Conv + BatchNorm pair into one Conv: those convolutions take the folded weights and their
BatchNorm becomes the identity (mean 0, variance 1 - eps, scale 1, shift 0). ONNX orders the GRU gates z, r, h
where torch orders them r, z, n. Fine-tuning keeps every BatchNorm in eval mode (freeze_batchnorm), so the network
starts out computing exactly what the ONNX graph computes.

    python models/recipe/onnx_init.py models/oris_visemes.onnx   # checks torch against onnxruntime
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from network import VisemeNet  # noqa: E402

# the folded convolutions, in graph order, and the BatchNorm each one absorbed
FOLDED = (("encoder.0.0", "encoder.0.1"), ("encoder.1.0", "encoder.1.1"), ("encoder.2.0", "encoder.2.1"),
          ("up.3.0", "up.3.1"))


def _gru_gates(w: np.ndarray, hidden: int) -> np.ndarray:
    z, r, h = w[:hidden], w[hidden:2 * hidden], w[2 * hidden:]
    return np.concatenate([r, z, h])


def state_from_onnx(path: Path, model: VisemeNet) -> dict[str, torch.Tensor]:
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    init = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for name, value in init.items():  # initializers that kept their torch names
        if name in state:
            state[name] = torch.tensor(value.copy())
    convs = [n for n in graph.node if n.op_type == "Conv" and n.input[1].startswith("onnx::")]
    if len(convs) != len(FOLDED):
        raise ValueError(f"expected {len(FOLDED)} folded convolutions, found {len(convs)}")
    for node, (conv, bn) in zip(convs, FOLDED):
        state[f"{conv}.weight"] = torch.tensor(init[node.input[1]].copy())
        state[f"{conv}.bias"] = torch.tensor(init[node.input[2]].copy())
        eps = dict(model.named_modules())[bn].eps
        state[f"{bn}.weight"] = torch.ones_like(state[f"{bn}.weight"])
        state[f"{bn}.bias"] = torch.zeros_like(state[f"{bn}.bias"])
        state[f"{bn}.running_mean"] = torch.zeros_like(state[f"{bn}.running_mean"])
        state[f"{bn}.running_var"] = torch.full_like(state[f"{bn}.running_var"], 1.0 - eps)
    grus = [n for n in graph.node if n.op_type == "GRU"]
    hidden = model.gru.hidden_size
    for layer, node in enumerate(grus):
        w, r = init[node.input[1]], init[node.input[2]]
        b = init[node.input[3]] if len(node.input) > 3 and node.input[3] else np.zeros((2, 6 * hidden), np.float32)
        for d, suffix in enumerate(("", "_reverse")):
            state[f"gru.weight_ih_l{layer}{suffix}"] = torch.tensor(_gru_gates(w[d], hidden))
            state[f"gru.weight_hh_l{layer}{suffix}"] = torch.tensor(_gru_gates(r[d], hidden))
            state[f"gru.bias_ih_l{layer}{suffix}"] = torch.tensor(_gru_gates(b[d][:3 * hidden], hidden))
            state[f"gru.bias_hh_l{layer}{suffix}"] = torch.tensor(_gru_gates(b[d][3 * hidden:], hidden))
    return state


def freeze_batchnorm(model: torch.nn.Module) -> None:
    """Keep every BatchNorm in eval mode whatever model.train() asks: its statistics stay those it was exported with."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()
            m.train = types.MethodType(lambda self, mode=True: torch.nn.Module.train(self, False), m)


def check(path: Path) -> float:
    """Max |torch - onnxruntime| of both outputs on random audio of an odd length."""
    import onnxruntime as ort

    model = VisemeNet()
    model.load_state_dict(state_from_onnx(path, model))
    model.eval()
    audio = (np.random.default_rng(0).standard_normal((2, 16000 * 3 + 77)) * 0.1).astype(np.float32)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_vis, onnx_ph = sess.run(None, {"audio": audio})
    with torch.no_grad():
        vis, ph = model(torch.tensor(audio))
    return max(float(np.abs(onnx_vis - vis.numpy()).max()), float(np.abs(onnx_ph - ph.numpy()).max()))


if __name__ == "__main__":
    err = check(Path(sys.argv[1]))
    print(f"max |torch - onnxruntime| {err:.2e}")
    sys.exit(0 if err < 1e-4 else 1)
