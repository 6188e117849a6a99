"""Face rigs as artists bring them, built from the bundled heads: other naming conventions, keys that rest
above zero, captured takes, faces split over meshes under an empty, odd object scales, a bone parent and
other frame rates. Shared by tests/test_wild_rigs.py and `benchmarks/contact.py --quality`.

    scene = build("captured_take")   # a fresh file: two heads facing each other, the case applied to both
    scene.pair, scene.lip_sync_meshes, scene.fps, scene.mm   # what to drive, and a millimetre there
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import bpy
import numpy as np
from mathutils import Matrix

from .scenes import ICT_HEAD, MH_HEAD, Pair, make_pair, reset, split_face

OCULUS = ["sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "I", "O", "U"]


@dataclass
class WildScene:
    pair: Pair
    lip_sync_meshes: list[Any]  # head A's meshes that carry shape keys (or head B's, for the bone cases)
    fps: float
    mm: float  # one millimetre of the human head, in scene units
    notes: list[str] = field(default_factory=list)


def _face_meshes(head: Any) -> list[Any]:
    found = [head] if head.type == "MESH" else []
    return found + [c for c in head.children_recursive if c.type == "MESH"]


def _rename(ob: Any, rename: Callable[[str], str | None]) -> None:
    for kb in ob.data.shape_keys.key_blocks[1:]:
        new = rename(kb.name)
        if new:
            kb.name = new


def rocketbox_names(ob: Any) -> None:
    """AA_VI_00_Sil ... AA_VI_14_U and AK_nn_ ARKit keys, as Microsoft Rocketbox avatars carry them."""
    arkit = [kb.name for kb in ob.data.shape_keys.key_blocks[1:] if not kb.name.startswith("viseme_")]
    def rename(name: str) -> str | None:
        if name.startswith("viseme_"):
            v = name[len("viseme_"):]
            return f"AA_VI_{OCULUS.index(v):02d}_{v[0].upper() + v[1:]}"
        return f"AK_{arkit.index(name):02d}_{name[0].upper() + name[1:]}"
    _rename(ob, rename)


def lower_case_visemes(ob: Any) -> None:
    """Viseme_pp, Viseme_aa ...: another vendor prefix, and the visemes in lower case."""
    _rename(ob, lambda n: "Viseme_" + n[len("viseme_"):].lower() if n.startswith("viseme_") else None)


def rest_above_zero(ob: Any) -> None:
    """A glTF's default morph weights: every key a little above 0, the pucker, funnel and jaw more."""
    for kb in ob.data.shape_keys.key_blocks[1:]:
        kb.value = 0.04
    for name, value in (("mouthPucker", 0.16), ("mouthFunnel", 0.08), ("jawOpen", 0.14)):
        ob.data.shape_keys.key_blocks[name].value = value


def captured_take(ob: Any, where: str = "active") -> None:
    """A capture on every key, mouth and jaw moving (as in "Key|Take 001|BaseLayer"): the shape keys' active
    action, or already in the NLA (`nla`), or there and muted (`muted`)."""
    key = ob.data.shape_keys
    action = bpy.data.actions.new(f"Key|Take 001|{ob.name}")
    slot = action.slots.new(id_type="KEY", name=key.name)
    bag = action.layers.new("BaseLayer").strips.new(type="KEYFRAME").channelbag(slot, ensure=True)
    frames = np.arange(-30, 241, 6, dtype=np.float32)
    for i, kb in enumerate(key.key_blocks[1:]):
        fc = bag.fcurves.new(f'key_blocks["{kb.name}"].value')
        wave = 0.25 + 0.2 * np.sin(frames / 9.0 + i)  # every key moves, the jaw and smile among them
        fc.keyframe_points.add(len(frames))
        fc.keyframe_points.foreach_set("co", np.stack([frames, wave], axis=1).ravel())
        fc.update()
    ad = key.animation_data_create()
    if where == "active":
        ad.action, ad.action_slot = action, slot
        return
    track = ad.nla_tracks.new()
    track.name = "Take 001"
    track.strips.new("Take 001", -30, action).action_slot = slot
    track.mute = where == "muted"


def split_under_empty(ob: Any) -> Any:
    """Eyes and teeth as meshes of their own, the three under an empty (the head to pick for contact)."""
    name, world = ob.name, ob.matrix_world.copy()
    meshes = split_face(ob)
    empty = bpy.data.objects.new(name, None)
    bpy.context.scene.collection.objects.link(empty)
    empty.matrix_world = world
    for mesh in meshes:
        mesh.parent = empty
        mesh.matrix_parent_inverse = world.inverted()
    return empty


def _scale_objects(pair: Pair, scale: tuple[float, float, float]) -> None:
    for ob in (pair.a, pair.b):
        ob.matrix_world = ob.matrix_world @ Matrix.Diagonal((*scale, 1.0))


def _both(change: Callable[[Any], Any]) -> Callable[[Pair], Pair]:
    def apply(pair: Pair) -> Pair:
        for ob in (pair.a, pair.b):
            change(ob)
        return pair
    return apply


def _split(pair: Pair) -> Pair:
    return Pair(split_under_empty(pair.a), split_under_empty(pair.b))


# name: (head file, make_pair options, what is done to the pair, frame rate)
CASES: dict[str, tuple[Any, dict, Callable[[Pair], Pair] | None, float]] = {
    "rocketbox_names": (MH_HEAD, {}, _both(rocketbox_names), 24),
    "lower_case_visemes": (MH_HEAD, {}, _both(lower_case_visemes), 24),
    "rest_above_zero": (ICT_HEAD, {}, _both(rest_above_zero), 24),
    "captured_take": (MH_HEAD, {}, _both(captured_take), 24),
    "take_in_the_nla": (MH_HEAD, {}, _both(lambda ob: captured_take(ob, "nla")), 24),
    "take_muted": (MH_HEAD, {}, _both(lambda ob: captured_take(ob, "muted")), 24),
    "split_under_empties": (ICT_HEAD, {}, _split, 24),
    "object_scale_0.01": (MH_HEAD, {"world_scale": 0.01}, None, 24),
    "object_scale_10": (MH_HEAD, {"world_scale": 10.0}, None, 24),
    "non_uniform_scale": (MH_HEAD, {}, lambda p: (_scale_objects(p, (1.1, 0.95, 1.2)), p)[1], 24),
    "bone_parent": (MH_HEAD, {"armature_b": True, "bone_parent": True}, None, 24),
    "bone_weighted": (MH_HEAD, {"armature_b": True}, None, 24),
    "fps_25": (MH_HEAD, {}, None, 25),
    "fps_30": (MH_HEAD, {}, None, 30),
    "fps_60": (MH_HEAD, {}, None, 60),
}


def build(name: str) -> WildScene:
    path, options, change, fps = CASES[name]
    reset()
    pair = make_pair(path, path, **options)
    if change is not None:
        pair = change(pair)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = int(fps), 1.0
    lip_head = pair.b if pair.bone_b else pair.a  # the bone cases speak through the head on the bone
    if lip_head.type == "ARMATURE":
        meshes = [c for c in lip_head.children if c.type == "MESH"]
    else:
        meshes = _face_meshes(lip_head)
    keyed = [m for m in meshes if m.data.shape_keys is not None and len(m.data.shape_keys.key_blocks) > 1]
    world = options.get("world_scale", 1.0) * (math.prod((1.1, 0.95, 1.2)) ** (1 / 3) if name == "non_uniform_scale" else 1.0)
    bpy.context.view_layer.update()
    return WildScene(pair, keyed, float(fps), 0.001 * world)
