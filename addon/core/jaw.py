"""Jaws opened by a bone: which bone, how far, and the opening over time (no bpy).

Most game rigs (Mixamo, Rigify, UE5 Manny and Quinn, CC4, Auto-Rig Pro) open the jaw with a bone, so a jaw-open
shape key alone either does not exist or is driven from that bone. The opening follows the visemes as the ARKit
preset's jawOpen does (aa fully open, closures shut), scaled to the rig's own range in degrees."""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

from .rigs import _ARKIT
from .visemes import VISEMES

DEFAULT_JAW_DEGREES = 20.0  # a jaw opened for a wide "ah"; a rig's own range or --jaw-degrees overrides it
JAW_DEGREES_PROPERTIES = ("jaw_open_degrees", "oris_jaw_degrees")  # a custom property on the bone gives its range

# How open the jaw is for each viseme, 0 to 1: the ARKit preset's jawOpen, the widest (aa) as 1
_JAW_ROW = np.array([_ARKIT.get(v, {}).get("jawOpen", 0.0) for v in VISEMES], np.float32)
JAW_OPEN_BY_VISEME = _JAW_ROW / _JAW_ROW.max()

# Common rigs' jaw bones, in the order a name is preferred: controls before deform and mechanism bones, which
# follow a control by constraints and would ignore keys
_PREFERRED = ("jaw_master", "c_jawbone.x", "jaw_ctrl", "ctrl_jaw", "jaw", "jawroot", "mjaw", "facial_c_jaw",
              "lowerjaw", "jaw_m", "jaw_c")
_FOLLOWERS = re.compile(r"^(def|org|mch)[-_.]", re.IGNORECASE)
_NOT_THE_JAW = re.compile(r"upper|teeth|tongue|lip|end$|_end|nub", re.IGNORECASE)


def jaw_open(frames: np.ndarray) -> np.ndarray:
    """[n] jaw opening, 0 (shut) to 1 (wide), from [n, 15] viseme weights."""
    return np.clip(frames @ JAW_OPEN_BY_VISEME, 0.0, 1.0)


def _plain(name: str) -> str:
    """A bone name without its rig's namespace or prefix: mixamorig:Jaw -> jaw, CC_Base_JawRoot -> jawroot,
    Bip01 MJaw -> mjaw."""
    name = name.rsplit(":", 1)[-1]
    name = re.sub(r"^(cc_base_|bip0?1[ _]|b_|bn_|def[-_.]|org[-_.]|mch[-_.])", "", name, flags=re.IGNORECASE)
    return name.replace(" ", "").lower()


def find_jaw_bone(names: Iterable[str]) -> str | None:
    """The bone that opens the jaw, by name; None when no bone is named for it."""
    candidates = [n for n in names if "jaw" in n.lower() and not _NOT_THE_JAW.search(_plain(n))]
    if not candidates:
        return None

    def rank(name: str) -> tuple[int, int, int]:
        plain = _plain(name)
        preferred = _PREFERRED.index(plain) if plain in _PREFERRED else len(_PREFERRED)
        return (bool(_FOLLOWERS.match(name.rsplit(":", 1)[-1])), preferred, len(name))

    return min(candidates, key=rank)


def jaw_degrees(properties: dict[str, object], override: float | None) -> tuple[float, str]:
    """The rig's jaw range in degrees and where it came from: the user's override, the bone's own custom
    property, else the default."""
    if override is not None:
        return float(override), "--jaw-degrees"
    for name in JAW_DEGREES_PROPERTIES:
        value = properties.get(name)
        if isinstance(value, (int, float)) and 0 < float(value) <= 90:
            return float(value), f"the bone's {name} property"
    return DEFAULT_JAW_DEGREES, "the default"


def opening_axis(axes_world: dict[str, np.ndarray], pivot: np.ndarray, chin: np.ndarray,
                 up: np.ndarray) -> tuple[str, float, float]:
    """The bone's local axis (and its sign) whose rotation moves the chin down most, and how far the chin moves
    per radian: rotating by a small angle about a unit axis moves a point p by angle * axis x (p - pivot)."""
    best = ("X", 1.0, 0.0)
    for name, axis in axes_world.items():
        down = -float(np.dot(np.cross(axis, chin - pivot), up))
        if abs(down) > abs(best[2]):
            best = (name, 1.0 if down > 0 else -1.0, down)
    return best[0], best[1], abs(best[2])
