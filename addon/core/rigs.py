"""Rig presets: how the 15 visemes become a face rig's shape keys, and which preset a rig uses.

A preset maps each viseme to a pose: {shape key: weight}. Detection matches the rig's shape-key
names to each preset's, tolerant of case, of separators, of `_L`/`_R` against `Left`/`Right`,
and of prefixes (`AK_25_JawOpen`, `AA_VI_03_TH`), and reports what it matched and missed.
Presets save to and load from JSON, so custom mappings travel between projects. No bpy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from .visemes import VISEMES

Pose = dict[str, float]


@dataclass
class Preset:
    name: str
    label: str
    poses: dict[str, Pose]  # viseme name -> {shape key: weight}
    extras: dict[str, Pose] = field(default_factory=dict)  # e.g. blink, pucker for contact animation

    @property
    def keys(self) -> list[str]:
        return sorted({k for pose in self.poses.values() for k in pose})

    def to_json(self) -> str:
        return json.dumps({"oris_preset": 1, "name": self.name, "label": self.label, "poses": self.poses,
                           "extras": self.extras}, indent=2)

    @staticmethod
    def from_json(text: str) -> Preset:
        doc = json.loads(text)
        if doc.get("oris_preset") != 1:
            raise ValueError("not an Oris preset file (missing \"oris_preset\": 1)")
        poses = {v: {str(k): float(w) for k, w in doc["poses"].get(v, {}).items()} for v in VISEMES}
        unknown = set(doc["poses"]) - set(VISEMES)
        if unknown:
            raise ValueError(f"unknown viseme(s) in preset: {', '.join(sorted(unknown))}")
        extras = {n: {str(k): float(w) for k, w in p.items()} for n, p in doc.get("extras", {}).items()}
        return Preset(str(doc["name"]), str(doc.get("label", doc["name"])), poses, extras)


# Preset keys that open the jaw: on a rig with one, --jaw scales these and --lips every other mouth key of a pose
JAW_KEYS = frozenset({"jawOpen", "V_Open"})

MappingRow = tuple[str, str, float]  # (viseme or extra such as "blink", shape key, weight)


def preset_from_rows(rows: Iterable[MappingRow], name: str = "custom", label: str = "Custom mapping") -> Preset:
    """A preset from editable rows; a viseme with no row stays at rest."""
    poses: dict[str, Pose] = {v: {} for v in VISEMES}
    extras: dict[str, Pose] = {}
    for target, key, weight in rows:
        if not key:
            continue
        pose = poses[target] if target in poses else extras.setdefault(target, {})
        pose[key] = pose.get(key, 0.0) + float(weight)
    if not any(poses.values()):
        raise ValueError("the custom mapping maps no viseme to a shape key; add rows or start from the detected preset")
    return Preset(name, label, poses, extras)


def preset_rows(preset: Preset, mapping: dict[str, str] | None = None) -> list[MappingRow]:
    """The preset as rows, with the rig's own key names when a match's mapping is given."""
    def rig(key: str) -> str:
        return mapping.get(key, key) if mapping is not None else key
    rows = [(v, rig(k), w) for v in VISEMES for k, w in preset.poses.get(v, {}).items()]
    rows += [(n, rig(k), w) for n, pose in preset.extras.items() for k, w in pose.items()]
    return rows


def _one_to_one(names: Iterable[str]) -> dict[str, Pose]:
    return {v: ({k: 1.0} if k else {}) for v, k in zip(VISEMES, names)}


def _lr(base: str, w: float) -> Pose:
    return {f"{base}Left": w, f"{base}Right": w}


_ARKIT: dict[str, Pose] = {
    "sil": {},
    "PP": {"mouthClose": 0.3, **_lr("mouthPress", 0.6), "mouthRollLower": 0.3, "mouthRollUpper": 0.2},
    "FF": {"mouthRollLower": 0.6, **_lr("mouthUpperUp", 0.25), "jawOpen": 0.06, "mouthShrugUpper": 0.2},
    "TH": {"jawOpen": 0.12, "tongueOut": 0.4, **_lr("mouthLowerDown", 0.15)},
    "DD": {"jawOpen": 0.18, **_lr("mouthStretch", 0.15), **_lr("mouthLowerDown", 0.15)},
    "kk": {"jawOpen": 0.22, **_lr("mouthStretch", 0.2)},
    "CH": {"mouthFunnel": 0.5, "mouthPucker": 0.2, "jawOpen": 0.15, "mouthShrugUpper": 0.2},
    "SS": {"jawOpen": 0.06, **_lr("mouthStretch", 0.35), **_lr("mouthSmile", 0.15)},
    "nn": {"jawOpen": 0.15, **_lr("mouthStretch", 0.15), **_lr("mouthLowerDown", 0.1)},
    "RR": {"mouthFunnel": 0.35, "mouthPucker": 0.25, "jawOpen": 0.15},
    "aa": {"jawOpen": 0.6, **_lr("mouthLowerDown", 0.3), **_lr("mouthUpperUp", 0.1), **_lr("mouthStretch", 0.1)},
    "E": {"jawOpen": 0.35, **_lr("mouthStretch", 0.35), **_lr("mouthSmile", 0.2), **_lr("mouthLowerDown", 0.2)},
    "ih": {"jawOpen": 0.2, **_lr("mouthSmile", 0.35), **_lr("mouthStretch", 0.3)},
    "oh": {"jawOpen": 0.4, "mouthFunnel": 0.6, "mouthPucker": 0.2},
    "ou": {"jawOpen": 0.15, "mouthPucker": 0.8, "mouthFunnel": 0.3},
}
_ARKIT_EXTRAS = {"blink": _lr("eyeBlink", 1.0), "pucker": {"mouthPucker": 1.0, "mouthFunnel": 0.2}}

_CC4_PAIRS: dict[str, Pose] = {
    "sil": {},
    "PP": {"V_Explosive": 1.0},
    "FF": {"V_Dental_Lip": 1.0},
    "TH": {"V_Open": 0.2, "V_Tongue_Out": 0.8},
    "DD": {"V_Open": 0.25, "V_Tongue_up": 0.7},
    "kk": {"V_Open": 0.35, "V_Tongue_Raise": 0.6},
    "CH": {"V_Affricate": 1.0},
    "SS": {"V_Wide": 0.4, "V_Tight": 0.6},
    "nn": {"V_Open": 0.2, "V_Tongue_up": 0.8},
    "RR": {"V_Tight_O": 0.5, "V_Tongue_Curl_U": 0.5},
    "aa": {"V_Open": 1.0},
    "E": {"V_Open": 0.4, "V_Wide": 0.7},
    "ih": {"V_Wide": 0.8, "V_Open": 0.15},
    "oh": {"V_Open": 0.5, "V_Tight_O": 0.6},
    "ou": {"V_Tight_O": 1.0},
}

_VROID: dict[str, Pose] = {
    "sil": {}, "PP": {"Fcl_MTH_Close": 1.0}, "FF": {"Fcl_MTH_I": 0.3, "Fcl_MTH_U": 0.2}, "TH": {"Fcl_MTH_E": 0.3},
    "DD": {"Fcl_MTH_E": 0.35}, "kk": {"Fcl_MTH_E": 0.3, "Fcl_MTH_A": 0.15}, "CH": {"Fcl_MTH_U": 0.5, "Fcl_MTH_I": 0.2},
    "SS": {"Fcl_MTH_I": 0.5}, "nn": {"Fcl_MTH_E": 0.3}, "RR": {"Fcl_MTH_U": 0.4, "Fcl_MTH_O": 0.2},
    "aa": {"Fcl_MTH_A": 1.0}, "E": {"Fcl_MTH_E": 1.0}, "ih": {"Fcl_MTH_I": 1.0}, "oh": {"Fcl_MTH_O": 1.0},
    "ou": {"Fcl_MTH_U": 1.0},
}

PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("oculus", "Oculus / Ready Player Me (viseme_*)", _one_to_one(
        ["viseme_sil", "viseme_PP", "viseme_FF", "viseme_TH", "viseme_DD", "viseme_kk", "viseme_CH", "viseme_SS",
         "viseme_nn", "viseme_RR", "viseme_aa", "viseme_E", "viseme_I", "viseme_O", "viseme_U"]),
        {"blink": _lr("eyeBlink", 1.0), "pucker": {"viseme_U": 1.0}}),
    Preset("vrchat", "VRChat (vrc.v_*)", _one_to_one(
        ["vrc.v_sil", "vrc.v_pp", "vrc.v_ff", "vrc.v_th", "vrc.v_dd", "vrc.v_kk", "vrc.v_ch", "vrc.v_ss", "vrc.v_nn",
         "vrc.v_rr", "vrc.v_aa", "vrc.v_e", "vrc.v_ih", "vrc.v_oh", "vrc.v_ou"]),
        {"blink": {"vrc.blink": 1.0}, "pucker": {"vrc.v_ou": 1.0}}),
    Preset("cc4_direct", "Reallusion CC4, direct 1:1 visemes", _one_to_one(
        ["", "B_M_P", "F_V", "Th", "T_L_D_N", "K_G_H_NG", "Ch_J", "S_Z", "T_L_D_N", "R", "Ah", "EE", "Ih", "Oh", "W_OO"]),
        {"blink": {"Eye_Blink_L": 1.0, "Eye_Blink_R": 1.0}, "pucker": {"W_OO": 1.0}}),
    Preset("cc4_pairs", "Reallusion CC4, 8 pairs + tongue (V_*)", _CC4_PAIRS,
           {"blink": {"Eye_Blink_L": 1.0, "Eye_Blink_R": 1.0}, "pucker": {"V_Tight_O": 1.0}}),
    Preset("arkit", "ARKit 52 blend shapes", _ARKIT, _ARKIT_EXTRAS),
    Preset("vroid", "VRoid (Fcl_MTH_*)", _VROID, {"blink": {"Fcl_EYE_Close": 1.0}, "pucker": {"Fcl_MTH_U": 1.0}}),
    Preset("preston_blair", "Preston Blair / Papagayo (AI, O, E, U, etc, L, WQ, MBP, FV, rest)", {
        "sil": {"rest": 1.0}, "PP": {"MBP": 1.0}, "FF": {"FV": 1.0}, "TH": {"etc": 1.0}, "DD": {"etc": 1.0},
        "kk": {"etc": 1.0}, "CH": {"etc": 1.0}, "SS": {"etc": 1.0}, "nn": {"L": 1.0}, "RR": {"E": 1.0},
        "aa": {"AI": 1.0}, "E": {"E": 1.0}, "ih": {"E": 1.0}, "oh": {"O": 1.0}, "ou": {"WQ": 0.5, "U": 0.5}},
        {"pucker": {"WQ": 1.0}}),
    Preset("rhubarb", "Rhubarb mouth shapes (A-H, X)", {
        "sil": {"X": 1.0}, "PP": {"A": 1.0}, "FF": {"G": 1.0}, "TH": {"B": 1.0}, "DD": {"B": 1.0}, "kk": {"B": 1.0},
        "CH": {"B": 1.0}, "SS": {"B": 1.0}, "nn": {"H": 1.0}, "RR": {"E": 1.0}, "aa": {"D": 1.0}, "E": {"C": 1.0},
        "ih": {"B": 1.0}, "oh": {"E": 1.0}, "ou": {"F": 1.0}},
        {"pucker": {"F": 1.0}}),  # F: the puckered lips of "oo" and "w"
)}

_SIDE = {"l": "left", "left": "left", "r": "right", "right": "right"}


def name_tokens(name: str) -> list[str]:
    """Split a shape-key name into lower-case tokens; sides become 'left'/'right'."""
    return list(_tokens(name))


@lru_cache(maxsize=65536)  # detection asks for the same few hundred names again and again
def _tokens(name: str) -> tuple[str, ...]:
    parts = re.split(r"[\s_.\-:|]+", name)
    tokens: list[str] = []
    for part in parts:
        tokens += [t.lower() for t in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", part) if t]
    if len(tokens) > 1 and tokens[-1] in _SIDE:  # a lone "R" is a shape name, not a side
        tokens[-1] = _SIDE[tokens[-1]]
    return tuple(tokens)


def _canon(name: str) -> str:
    return "".join(_tokens(name))


@lru_cache(maxsize=65536)
def _suffixes(name: str) -> frozenset[str]:
    """The name and each shorter tail of its tokens (so prefixes like AK_25_ are tolerated)."""
    tokens = _tokens(name)
    return frozenset("".join(tokens[i:]) for i in range(len(tokens)))


@dataclass
class Match:
    preset: Preset
    mapping: dict[str, str]  # preset key -> rig key
    missing: list[str]

    @property
    def coverage(self) -> float:
        keys = self.preset.keys
        return sum(k in self.mapping for k in keys) / len(keys) if keys else 0.0

    def report(self) -> str:
        matched = sum(k in self.mapping for k in self.preset.keys)
        text = f"{self.preset.label}: matched {matched} of {len(self.preset.keys)} keys"
        if self.missing:
            shown = ", ".join(self.missing[:10]) + (" ..." if len(self.missing) > 10 else "")
            text += f"; missing {shown}"
        return text

    @property
    def has_jaw_key(self) -> bool:
        return any(k in self.mapping for k in JAW_KEYS)

    def pose_matrix(self, jaw: float = 1.0, lips: float = 1.0) -> tuple[np.ndarray, list[str]]:
        """[15, K] weights from viseme to the rig's own key names (missing keys dropped); `jaw` scales the poses'
        jaw keys (JAW_KEYS) and `lips` their other keys, closures and rest aside."""
        rig_keys = sorted({self.mapping[k] for k in self.preset.keys if k in self.mapping})  # never the extras
        col = {k: i for i, k in enumerate(rig_keys)}
        m = np.zeros((len(VISEMES), len(rig_keys)), np.float32)
        for v, viseme in enumerate(VISEMES):
            for key, w in self.preset.poses.get(viseme, {}).items():
                if key in self.mapping:
                    gain = 1.0 if viseme in ("sil", "PP") else jaw if key in JAW_KEYS else lips
                    m[v, col[self.mapping[key]]] += w * gain
        return m, rig_keys

    def extra_pose(self, name: str) -> dict[str, float]:
        return {self.mapping[k]: w for k, w in self.preset.extras.get(name, {}).items() if k in self.mapping}


def match_preset(preset: Preset, rig_keys: Iterable[str]) -> Match:
    """Pair each of the preset's keys (poses and extras) with a rig key: exact canonical name
    first, then the rig key whose shortest token tail equals it (a prefix was added). A preset whose
    keys share a prefix (viseme_*, vrc.v_*) also finds its set behind another prefix (AA_VI_01_PP,
    V_PP, VIS_PP, mouth_PP), and the better of the two readings is kept."""
    rig_keys = list(rig_keys)
    canon = {k: _canon(k) for k in rig_keys}
    wanted = sorted(set(preset.keys) | {k for p in preset.extras.values() for k in p})
    mapping: dict[str, str] = {}
    for key in wanted:
        target = _canon(key)
        exact = [k for k in rig_keys if canon[k] == target]
        if exact:
            mapping[key] = exact[0]
            continue
        tails = [k for k in rig_keys if target in _suffixes(k)]
        if tails:
            mapping[key] = min(tails, key=len)
    prefixed = _behind_a_prefix(preset, rig_keys)
    if sum(k in prefixed for k in preset.keys) > sum(k in mapping for k in preset.keys):
        mapping = {**{k: v for k, v in mapping.items() if k not in preset.keys}, **prefixed}
    missing = [k for k in preset.keys if k not in mapping]
    return Match(preset, mapping, missing)


def _behind_a_prefix(preset: Preset, rig_keys: list[str]) -> dict[str, str]:
    """The preset's keys found as one consistent family of rig keys that differ from the preset's own
    names only in their prefix: index numbers and vendor tokens (AA_VI_07_SS for viseme_SS)."""
    tokens = {k: name_tokens(k) for k in preset.keys}
    shared = 0
    while all(len(t) > shared + 1 and t[shared] == next(iter(tokens.values()))[shared] for t in tokens.values()):
        shared += 1
    if not shared:
        return {}
    core = {"".join(t[shared:]): key for key, t in tokens.items()}
    families: dict[str, dict[str, str]] = {}
    for rig_key in rig_keys:
        rig_tokens = name_tokens(rig_key)
        for split in range(len(rig_tokens) - 1, 0, -1):
            found = core.get("".join(rig_tokens[split:]))
            if found is not None:
                family = " ".join(t for t in rig_tokens[:split] if not t.isdigit())
                families.setdefault(family, {}).setdefault(found, rig_key)
                break
    return max(families.values(), key=len, default={})


def detect(rig_keys: Iterable[str], presets: Iterable[Preset] | None = None) -> list[Match]:
    """Every preset's match to the rig, best first: highest coverage, then the order of PRESETS
    (dedicated viseme keys before poses built from expression keys)."""
    if presets is None:  # the built-in presets: once per rig, however many lines a scene gives it
        return list(_detect_builtin(tuple(rig_keys)))
    matches = [match_preset(p, list(rig_keys)) for p in presets]
    order = {p: i for i, p in enumerate(PRESETS)}
    return sorted(matches, key=lambda m: (-round(m.coverage, 3), order.get(m.preset.name, 99)))


@lru_cache(maxsize=64)
def _detect_builtin(keys: tuple[str, ...]) -> tuple[Match, ...]:
    return tuple(detect(keys, list(PRESETS.values())))


def why_chosen(rig_keys: Iterable[str]) -> str:
    """Which preset auto-detection picks and, when another also fits the rig, why this one."""
    matches = detect(rig_keys)
    best = matches[0]
    text = best.report()
    rival = next((m for m in matches[1:] if m.coverage >= 0.6), None)
    if rival is not None:
        why = ("more of its keys are on the rig" if round(best.coverage, 3) > round(rival.coverage, 3)
               else "a rig's own viseme shapes are driven before poses built from expression keys")
        text += f"; chosen over {rival.preset.label} ({rival.coverage:.0%} of its keys): {why}"
    return text


class RigError(ValueError):
    """The rig cannot be driven by any preset; the message lists what was expected and found."""


def best_match(rig_keys: Iterable[str], preset_name: str = "auto", min_coverage: float = 0.6,
               custom: Preset | None = None) -> Match:
    keys = list(rig_keys)
    if not keys:
        raise RigError("the object has no shape keys; add viseme shape keys (e.g. ARKit or viseme_*) first")
    if custom is not None:
        match = match_preset(custom, keys)
    elif preset_name == "auto":
        match = detect(keys)[0]
    else:
        if preset_name not in PRESETS:
            raise RigError(f"unknown preset {preset_name!r}; choose auto or one of {', '.join(PRESETS)}")
        match = match_preset(PRESETS[preset_name], keys)
    if match.coverage < min_coverage or not match.mapping:
        found = ", ".join(keys[:12]) + (" ..." if len(keys) > 12 else "")
        expected = ", ".join(match.preset.keys[:12]) + (" ..." if len(match.preset.keys) > 12 else "")
        raise RigError(f"no preset matches this rig's shape keys (best: {match.report()}). "
                       f"Expected keys such as {expected}; found {found}. Pick a preset or make a custom mapping.")
    return match


# what lip sync and contact do with other animation on the channels they key (blender/existing.py)
EXISTING_ANIMATION = ("keep", "mute", "refuse")
MOUTH_TOKENS = frozenset({"mouth", "jaw", "lip", "lips", "tongue", "viseme", "visemes", "teeth"})


def mouth_keys(rig_keys: Iterable[str], match: Match) -> list[str]:
    """Every rig key that shapes the mouth: those the match drives, those of any other convention the
    rig also carries (its viseme poses), and keys named for the mouth, jaw, lips or tongue (jawForward,
    mouthFrownLeft). Lip sync holds all of them, so another animation's mouth cannot leak into it."""
    keys = list(rig_keys)
    found = set(match.pose_matrix()[1])
    for other in detect(keys):
        if other.coverage >= 0.6:
            found |= set(other.pose_matrix()[1])
    found |= {k for k in keys if MOUTH_TOKENS.intersection(_tokens(k))}
    return [k for k in keys if k in found]


def rest_values(names: Iterable[str], stored: dict[str, float], animated: set[str], remembered: dict[str, float],
                ranges: dict[str, tuple[float, float]]) -> dict[str, float]:
    """The value each key rests at: what Oris remembered on an earlier run, else the value stored in the
    file where nothing animates the key (a glTF's default weights), else its basis value 0, each within
    the key's slider range (animation writes into the stored value, so an animated key's is no rest)."""
    out = {}
    for name in names:
        lo, hi = ranges[name]
        value = remembered.get(name, 0.0 if name in animated else stored[name])
        out[name] = float(min(max(value, lo), hi))
    return out
