"""Where the shipped model lives, its card, and its integrity check. No bpy, no onnxruntime."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

MODEL_FILE = "oris_visemes.onnx"
# the viseme model for lines in other languages (fine-tuned from the English one on real French, Spanish and
# Russian speech): it lies beside the English model and shares its card's decoding constants
MULTILINGUAL_FILE = "oris_visemes_multilingual.onnx"
RECOGNIZER_CARD = "oris_whisper.json"
_PACKAGE_DIR = Path(__file__).resolve().parents[1]


class ModelError(RuntimeError):
    """The model file or its card is missing, unreadable or does not match."""


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    card: dict[str, Any]

    @property
    def sha256(self) -> str:
        return str(self.card["sha256"])


def _candidates() -> list[Path]:
    env = os.environ.get("ORIS_MODEL")
    if env:
        return [Path(env)]
    # inside the extension or an installed wheel; then a source checkout (addon/../models)
    return [_PACKAGE_DIR / "models" / MODEL_FILE, _PACKAGE_DIR.parent / "models" / MODEL_FILE]


def find_model(path: str | os.PathLike[str] | None = None) -> ModelInfo:
    """Locate the model and read its card (the .json beside the .onnx)."""
    candidates = [Path(path)] if path else _candidates()
    for onnx in candidates:
        if onnx.is_file():
            card_path = onnx.with_suffix(".json")
            try:
                card = json.loads(card_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ModelError(f"model card {card_path} is missing or unreadable: {exc}") from exc
            if "sha256" not in card:
                raise ModelError(f"model card {card_path} has no sha256")
            return ModelInfo(onnx, card)
    tried = ", ".join(str(c) for c in candidates)
    raise ModelError(f"no Oris model found (looked at {tried}); reinstall Oris or set ORIS_MODEL")


def find_multilingual(english: ModelInfo) -> ModelInfo | None:
    """The model for other languages beside `english`; None where there is none (every language then uses
    the English model). A batch asks once per line: the card is read again only when its file changes."""
    path = english.path.with_name(MULTILINGUAL_FILE)
    if not path.is_file() or path == english.path:
        return None
    card = path.with_suffix(".json")
    stamp = card.stat() if card.is_file() else None
    return _model_at(str(path), (stamp.st_mtime_ns, stamp.st_size) if stamp else None)


@lru_cache(maxsize=8)
def _model_at(path: str, card_stamp: tuple[int, int] | None) -> ModelInfo:
    return find_model(path)


def model_files(english: ModelInfo) -> list[tuple[str, Path]]:
    """Every file of the viseme models, named for a message: inputs that no output may replace."""
    models = [("the model", english)]
    other = find_multilingual(english)
    if other is not None:
        models.append(("the multilingual model", other))
    return [(f"{name}{part}", path) for name, model in models
            for part, path in (("", model.path), (" card", model.path.with_suffix(".json")))]


def models_identity(english: ModelInfo) -> str:
    """The viseme models a run may use, as one string: a run's identity (a re-run with other models is another run)."""
    other = find_multilingual(english)
    return english.sha256 if other is None else f"{english.sha256}+{other.sha256}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(model: ModelInfo) -> bytes:
    """Read the model once, check it against the card's sha256, and return its bytes."""
    return read_checked(model.path, model.sha256, "model")


def find_recognizer() -> Path:
    """The speech recognizer's card (its ONNX files and vocabulary lie beside it)."""
    env = os.environ.get("ORIS_RECOGNIZER")
    candidates = [Path(env)] if env else [_PACKAGE_DIR / "models" / RECOGNIZER_CARD,
                                          _PACKAGE_DIR.parent / "models" / RECOGNIZER_CARD]
    for card in candidates:
        if card.is_file():
            return card
    raise ModelError(f"no speech recognizer found (looked at {', '.join(map(str, candidates))}); reinstall Oris, "
                     "or use --audio-only or a transcript (--text, --text-file)")


def read_checked(path: Path, sha256: str, what: str = "recognizer file") -> bytes:
    """A model file's bytes, checked against the sha256 its card records."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror or exc}; reinstall Oris") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise ModelError(f"{what} {path} does not match its card (sha256 {actual[:12]}..., card says {sha256[:12]}...): "
                         "the file is damaged or was replaced; reinstall Oris")
    return data
