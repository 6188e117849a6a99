"""The sequencer as a scene's dialogue: each sound strip lip-synced on its character, at its own frame, the strip
itself kept in place (core.dialogue matches strips to characters)."""

from __future__ import annotations

from typing import Any

import bpy

from ..core.dialogue import Line, SoundStrip, match_lines
from .clips import oris_sound_key, sound_path, sound_strips, strip_start, strip_trimmed
from .overrides import instanced_meshes


def scene_lines(scene: Any, channel_map: dict[int, str]) -> tuple[list[Line], list[str]]:
    """The scene's sound strips that are its characters' lines (Oris's own sound strips aside), and notes on the
    strips left out."""
    strips = [SoundStrip(str(s.name), int(s.channel), sound_path(s), strip_start(s), bool(s.mute), strip_trimmed(s))
              for s in sound_strips(scene)
              if s.type == "SOUND" and s.sound is not None and oris_sound_key(s) is None]
    characters = [str(o.name) for o in scene.objects if o.type in ("MESH", "ARMATURE", "EMPTY")]
    return match_lines(strips, characters, channel_map)


def character_meshes(name: str) -> list[Any]:
    """The objects lip sync keys for a character: the face mesh itself, a linked character's instance, or the
    meshes with shape keys under (or deformed by) an armature or an empty."""
    ob: Any = bpy.data.objects[name]
    if ob.type == "MESH" or instanced_meshes(ob):
        return [ob]

    def keyed(m: Any) -> bool:
        return m.type == "MESH" and m.data.shape_keys is not None

    found = [c for c in ob.children_recursive if keyed(c)]
    if ob.type == "ARMATURE":
        found += [m for m in bpy.data.objects if keyed(m) and m not in found
                  and any(mod.type == "ARMATURE" and getattr(mod, "object", None) == ob for mod in m.modifiers)]
    return found or [ob]
