"""Preset detection on the naming conventions met in the wild (bpy-free)."""

import pytest

from oris.core.rigs import PRESETS, Preset, RigError, best_match, detect, match_preset, why_chosen
from oris.core.visemes import VISEMES

ARKIT_52 = [
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight", "cheekPuff", "cheekSquintLeft",
    "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft",
    "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft",
    "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel", "mouthLeft",
    "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight",
    "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
    "tongueOut",
]


def _suffix_lr(name: str) -> str:
    return name.replace("Left", "_L").replace("Right", "_R")


@pytest.mark.parametrize("keys,expected", [
    (ARKIT_52, "arkit"),
    ([_suffix_lr(k) for k in ARKIT_52], "arkit"),  # ICT-FaceKit style
    ([f"AK_{i:02d}_{k[0].upper()}{k[1:]}" for i, k in enumerate(ARKIT_52)], "arkit"),  # prefixed
    ([k.lower() for k in ARKIT_52], "arkit"),
    ([f"viseme_{n}" for n in ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "I", "O", "U")] + ARKIT_52, "oculus"),
    ([f"vrc.v_{n}" for n in ("sil", "pp", "ff", "th", "dd", "kk", "ch", "ss", "nn", "rr", "aa", "e", "ih", "oh", "ou")], "vrchat"),
    (["V_Open", "V_Explosive", "V_Dental_Lip", "V_Tight_O", "V_Tight", "V_Wide", "V_Affricate", "V_Lip_Open",
      "V_Tongue_up", "V_Tongue_Raise", "V_Tongue_Out", "V_Tongue_Narrow", "V_Tongue_Lower", "V_Tongue_Curl_U", "V_Tongue_Curl_D"], "cc4_pairs"),
    ([f"AA_VI_{i:02d}_{n}" for i, n in enumerate(["AE", "Ah", "B_M_P", "Ch_J", "EE", "Er", "F_V", "Ih", "K_G_H_NG", "Oh", "R", "S_Z", "T_L_D_N", "Th", "W_OO"])], "cc4_direct"),
    (["Fcl_MTH_A", "Fcl_MTH_I", "Fcl_MTH_U", "Fcl_MTH_E", "Fcl_MTH_O", "Fcl_MTH_Close", "Fcl_EYE_Close"], "vroid"),
    (["AI", "O", "E", "U", "etc", "L", "WQ", "MBP", "FV", "rest"], "preston_blair"),
    ([f"Mouth_{c}" for c in "ABCDEFGHX"], "rhubarb"),
])
def test_detects_the_convention(keys, expected):
    assert detect(keys)[0].preset.name == expected
    assert best_match(keys).preset.name == expected


def test_report_lists_what_is_missing():
    keys = [k for k in ARKIT_52 if k != "tongueOut"]
    m = best_match(keys)
    assert m.preset.name == "arkit" and m.missing == ["tongueOut"] and "missing tongueOut" in m.report()


def test_pose_matrix_uses_the_rigs_own_names():
    m = match_preset(PRESETS["arkit"], [_suffix_lr(k) for k in ARKIT_52])
    matrix, names = m.pose_matrix()
    assert matrix.shape == (15, len(names)) and "jawOpen" in names and "mouthPress_L" in names
    assert matrix[VISEMES.index("aa"), names.index("jawOpen")] == pytest.approx(0.6)
    assert not matrix[VISEMES.index("sil")].any()
    assert "eyeBlink_L" not in names, "lip sync must never key the eyelids"
    assert m.extra_pose("blink") == {"eyeBlink_L": 1.0, "eyeBlink_R": 1.0}


def test_unmatched_rig_says_what_was_expected_and_found():
    with pytest.raises(RigError, match="Expected keys such as .* found Basis, Smile, Frown"):
        best_match(["Basis", "Smile", "Frown"])
    with pytest.raises(RigError, match="no shape keys"):
        best_match([])


def test_custom_preset_json_round_trip():
    custom = Preset("mine", "My rig", {v: ({"Open": 1.0} if v == "aa" else {"Closed": 1.0} if v == "PP" else {}) for v in VISEMES})
    loaded = Preset.from_json(custom.to_json())
    assert loaded.poses == custom.poses
    m = best_match(["Basis", "Open", "Closed"], custom=loaded)
    assert m.coverage == 1.0
    with pytest.raises(ValueError, match="not an Oris preset"):
        Preset.from_json("{}")


OCULUS_15 = ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "I", "O", "U")


@pytest.mark.parametrize("name", [
    "AA_VI_{i:02d}_{v}",  # Rocketbox, beside its ARKit keys prefixed AK_nn_
    "V_{v}", "Viseme_{v}", "mouth_{v}", "VIS_{v}", "VIS_{v_upper}", "visemes.{v_lower}", "Mouth_Viseme_{i}_{v}",
])
def test_a_rigs_own_oculus_set_behind_any_prefix_is_driven_before_arkit_composites(name):
    keys = [name.format(i=i, v=v, v_upper=v.upper(), v_lower=v.lower()) for i, v in enumerate(OCULUS_15)]
    keys += [f"AK_{i:02d}_{k[0].upper()}{k[1:]}" for i, k in enumerate(ARKIT_52)]
    best = detect(keys)[0]
    assert best.preset.name == "oculus" and best.coverage == 1.0, best.report()
    pp = best.mapping["viseme_PP"]
    assert pp == name.format(i=1, v="PP", v_upper="PP", v_lower="pp")
    assert best.mapping["viseme_I"].lower().endswith("i") and best.mapping["viseme_aa"].lower().endswith("aa")


def test_a_stray_key_does_not_make_a_viseme_set():
    keys = ARKIT_52 + ["Body_E", "Hat_O"]
    assert detect(keys)[0].preset.name == "arkit"


def test_the_choice_is_explained_when_two_conventions_fit():
    keys = [f"AA_VI_{i:02d}_{v}" for i, v in enumerate(OCULUS_15)] + ARKIT_52
    text = why_chosen(keys)
    assert text.startswith("Oculus") and "matched 15 of 15" in text
    assert "chosen over ARKit 52 blend shapes (100% of its keys): a rig's own viseme shapes" in text
    assert "chosen over" not in why_chosen(ARKIT_52)
