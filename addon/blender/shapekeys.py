"""Write viseme curves onto face rigs' shape keys as one Action, placed as an NLA strip.

One Action per run with a slot for each Key datablock (slotted actions: Blender 4.4+ and 5.x),
dense curves reduced to a few Bezier keys (core.keys), written with foreach_set. The strip is
named after the clip and lives on an "Oris" NLA track; running again replaces Oris's own
strip for that clip (blender.clips), and a re-take the strips it overlaps, and nothing else. Everything is checked before anything is written, so
a failure leaves the file as it was.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import bpy
import numpy as np

from ..core.curves import Animation, with_gains
from ..core.keys import DEFAULT_TOLERANCE, hold_keys, reduce_curve
from ..core.rigs import Match, Preset, RigError, best_match, mouth_keys, rest_values, why_chosen
from ..core.visemes import shape_gains
from . import existing
from .actions import (
    EditError,
    animated_paths,
    new_action,
    oris_strips,
    place_strip,
    remove_strips,
    write_keys,
)
from .clips import ACTION_PREFIX, Clip, action_clip_key
from .jaw import JawBone
from .overrides import CLEAR_OVERRIDE_MENU, MAKE_OVERRIDE_MENU, instanced_meshes, needs_override

TRACK_NAME = "Oris"


@dataclass
class KeyTarget:
    """One Key datablock (shared by every mesh object that uses it) and its matched keys."""

    key: Any  # bpy.types.Key
    objects: list[str]
    match: Match

    @cached_property  # detection over every preset: once per target
    def held(self) -> list[str]:
        """Every mouth and jaw key of the rig: the driven ones and those held at rest."""
        return mouth_keys(shape_key_names(self.key), self.match)

    @cached_property
    def paths(self) -> set[str]:
        return {value_path(name) for name in self.held}


def value_path(name: str) -> str:
    return f'key_blocks["{bpy.utils.escape_identifier(name)}"].value'


@dataclass
class ApplyReport:
    action: str
    strip: str
    start_frame: int
    end_frame: float
    targets: list[str]
    keys_written: int
    curves: int
    keys_per_second: float
    tolerance: float
    write_seconds: float
    notes: list[str] = field(default_factory=list)
    mode: str = ""  # audio, transcript or recognized
    words_text: str = ""  # the Text datablock holding the recognized words
    replaced: set[tuple[str, ...]] = field(default_factory=set)  # the clips whose strips this run removed


def shape_key_names(key: Any) -> list[str]:
    return [kb.name for kb in key.key_blocks if kb != key.reference_key]


def check_editable(ob: Any, key: Any = None) -> None:
    """Refuse linked or non-editable overridden data (the object, its data, its shape keys)."""
    parts = [("object is", ob), (f"{ob.type.lower()} data is", ob.data), ("shape keys are", key)]
    for what, data in parts:
        if data is None:
            continue
        if data.library is not None:
            raise EditError(f"{ob.name}: its {what} linked from {data.library.filepath}; make a library override "
                            f"({MAKE_OVERRIDE_MENU}) or animate it in the source file")
        override = getattr(data, "override_library", None)
        if override is not None and override.is_system_override:
            raise EditError(f"{ob.name}: its {what} a non-editable library override that Oris could not make "
                            f"editable; clear it and make it again ({CLEAR_OVERRIDE_MENU}, then {MAKE_OVERRIDE_MENU})")


def resolve_targets(objects: list[Any], preset: str = "auto", custom: Preset | None = None,
                    existing_animation: str = "keep") -> tuple[list[KeyTarget], list[str]]:
    """Match every mesh's Key datablock; one preset for the face (detected on the mesh with the most keys)."""
    notes: list[str] = []
    # a linked character's instance stands for its meshes (made an editable override when the keys are written)
    meshes = [m for ob in objects if ob is not None for m in (instanced_meshes(ob) or [ob]) if m.type == "MESH"]
    if not meshes:
        names = ", ".join(ob.name for ob in objects if ob is not None) or "nothing"
        raise RigError(f"no mesh object selected (got {names}); select the face mesh(es) that carry the shape keys")
    keyed = [ob for ob in meshes if ob.data.shape_keys is not None and len(ob.data.shape_keys.key_blocks) > 1]
    if not keyed:
        raise RigError(f"{', '.join(ob.name for ob in meshes)}: no shape keys; add viseme or ARKit shape keys to the face first")
    for ob in meshes:
        if ob not in keyed:
            notes.append(f"{ob.name}: skipped (no shape keys)")
    main = max(keyed, key=lambda ob: len(ob.data.shape_keys.key_blocks))
    chosen = best_match(shape_key_names(main.data.shape_keys), preset, custom=custom).preset
    if preset == "auto" and custom is None:
        choice = why_chosen(shape_key_names(main.data.shape_keys))
        if "chosen over" in choice:  # worth a word only when another convention also fits the rig
            notes.append(f"preset {choice}")
    targets: dict[str, KeyTarget] = {}
    for ob in keyed:
        key = ob.data.shape_keys
        if not needs_override(ob):
            check_editable(ob, key)
        if key.name in targets:
            targets[key.name].objects.append(ob.name)
            continue
        match = best_match(shape_key_names(key), custom=chosen, min_coverage=0.0)
        if not match.mapping:
            notes.append(f"{ob.name}: skipped (none of the {chosen.label} keys)")
            continue
        targets[key.name] = KeyTarget(key, [ob.name], match)
    if not targets:
        raise RigError("none of the selected meshes carries keys of the detected preset")
    for target in targets.values():
        existing.check(target.key, target.paths, existing_animation, ", ".join(target.objects), "lip sync")
    return list(targets.values()), notes


REST_PROPERTY = "oris_rest_values"  # on the Key: the rest value of each key Oris holds, kept across runs


def held_rest_values(target: KeyTarget) -> dict[str, float]:
    """The rest value of every mouth key of the target (remembered on the Key the first time)."""
    key = target.key
    names = target.held
    remembered = dict(key.get(REST_PROPERTY, {}))
    moving = animated_paths(key)
    animated = {n for n in names if value_path(n) in moving}
    blocks = {n: key.key_blocks[n] for n in names}
    rest = rest_values(names, {n: b.value for n, b in blocks.items()}, animated, remembered,
                       {n: (b.slider_min, b.slider_max) for n, b in blocks.items()})
    key[REST_PROPERTY] = {**remembered, **rest}
    return rest


def replaced_strips(key: Any, clip: Clip, start: float, end: float, keep_overlapping: bool) -> list[Any]:
    """Oris's strips on this Key that a new clip replaces: an earlier run of the same clip, and (a re-take)
    every strip the new one overlaps, unless the artist keeps overlapping takes."""
    return [s for s in oris_strips(key, TRACK_NAME) if action_clip_key(s) == clip.key
            or (not keep_overlapping and s.frame_start < end and s.frame_end > start)]


def target_values(target: KeyTarget, frames: np.ndarray, channels: tuple[float, float]) -> tuple[np.ndarray, list[str]]:
    """The rig's key values over the viseme frames (frames x keys) and the keys' names."""
    jaw, lips = channels
    if target.match.has_jaw_key:
        matrix, names = target.match.pose_matrix(jaw, lips)
    else:
        matrix, names = target.match.pose_matrix()
        frames = with_gains(frames, shape_gains(1.0, jaw, lips))
    return np.clip(frames @ matrix, 0.0, None), names


def apply_animation(anim: Animation, targets: list[KeyTarget], clip: Clip, tolerance: float = DEFAULT_TOLERANCE,
                    existing_animation: str = "keep", keep_overlapping: bool = False,
                    jaw: JawBone | None = None, channels: tuple[float, float] = (1.0, 1.0)) -> ApplyReport:
    """Key the animation (frames at the scene rate, frame k at clip.start + k) onto every target, and
    every other mouth and jaw key of the rig at its rest value, so no other animation's mouth leaks in;
    and the jaw bone's rotation, where the rig opens its jaw with one (blender.jaw). channels: the jaw and lips
    intensities, on the rig's jaw key and the other mouth keys where it has a jaw key (or a jaw bone), else on
    each viseme's jaw and lip shares."""
    t0 = time.perf_counter()
    n = len(anim.frames)
    notes: list[str] = []
    replaced: set[tuple[str, ...]] = set()
    target_rest: dict[int, dict[str, float]] = {}
    start_frame, strip_name = clip.start, clip.name
    end = start_frame + max(n - 1, 1)
    for target in targets:
        doomed = replaced_strips(target.key, clip, start_frame, end, keep_overlapping)
        for strip in doomed:
            replaced.add(action_clip_key(strip))
            if action_clip_key(strip) != clip.key:
                notes.append(f"replaced Oris's clip {strip.name!r} (frames {strip.frame_start:.0f}-{strip.frame_end:.0f}) "
                             f"on {', '.join(target.objects)}: the new clip overlaps it (--keep-overlapping, or the "
                             "panel's Keep Overlapping Takes, keeps both)")
        remove_strips(target.key, TRACK_NAME, doomed)
        rest = held_rest_values(target)  # before other animation moves: it reads what animates each key
        notes += existing.make_way(target.key, target.paths, existing_animation, ", ".join(target.objects))
        target_rest[id(target)] = rest
    if jaw is not None:
        doomed = replaced_strips(jaw.armature, clip, start_frame, end, keep_overlapping)
        replaced |= {action_clip_key(s) for s in doomed}
        remove_strips(jaw.armature, TRACK_NAME, doomed)
        notes += existing.make_way(jaw.armature, jaw.rotation_paths, existing_animation, jaw.armature.name)
    action, layer_strip = new_action(ACTION_PREFIX + strip_name)
    clip.stamp(action)
    keys_written = curves = 0
    for target in targets:
        slot = action.slots.new(id_type="KEY", name=target.key.name)
        bag = layer_strip.channelbag(slot, ensure=True)
        values, names = target_values(target, anim.frames, channels)
        keyed = {name: reduce_curve(np.clip(values[:, col], target.key.key_blocks[name].slider_min,
                                            target.key.key_blocks[name].slider_max), tolerance, start=float(start_frame))
                 for col, name in enumerate(names)}
        keyed |= {name: hold_keys(value, start_frame)  # rest values are within the slider range already
                  for name, value in target_rest[id(target)].items() if name not in keyed}
        for name, keys in keyed.items():
            write_keys(bag, value_path(name), keys)
            keys_written += len(keys)
            curves += 1
        place_strip(target.key, action, slot, TRACK_NAME, strip_name, start_frame, end)
    if jaw is not None:
        slot = action.slots.new(id_type="OBJECT", name=jaw.armature.name)
        bag = layer_strip.channelbag(slot, ensure=True)
        for path, index, keys in jaw.keys(anim.frames, start_frame, tolerance, channels[0]):
            write_keys(bag, path, keys, index=index, group=jaw.bone)
            keys_written += len(keys)
            curves += 1
        place_strip(jaw.armature, action, slot, TRACK_NAME, strip_name, start_frame, end)
        notes.append(jaw.how)
    seconds = anim.duration if anim.duration > 0 else 1.0
    return ApplyReport(action.name, strip_name, start_frame, end, [t.key.name for t in targets], keys_written, curves,
                       keys_written / seconds, tolerance, time.perf_counter() - t0, notes, replaced=replaced)
