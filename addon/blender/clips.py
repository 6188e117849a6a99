"""Which clip Oris's datablocks belong to. A clip is its audio's absolute path and its start frame, remembered on
the Action, the sound strip and the words Text as a custom property, so two clips with one file name in different
folders never touch each other's strip, sound or words, and a re-take is found whatever its name. The words, and
the readable name, belong to the audio file alone: the same line placed at two frames says the same words.

Files from Oris versions before this one carry no identity: their datablocks are known by name, as they were."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import bpy

CLIP_PROPERTY = "oris_clip"
SOUND_FLAG = "oris"  # every sound strip Oris added (older files: the flag alone)
WORDS_FLAG = "oris_recognized"  # every words Text Oris wrote (older files: the flag alone)
WORDS_SUFFIX = " words"
ACTION_PREFIX = "Oris "


@dataclass(frozen=True)
class Clip:
    path: str  # absolute and normalized: the same file however the user named it
    start: int
    name: str = ""  # readable and unique among the file's clips (clip_name); not part of the identity

    @classmethod
    def of(cls, audio_path: str, start_frame: int) -> Clip:
        path = os.path.normcase(os.path.realpath(bpy.path.abspath(audio_path)))
        return cls(path, int(start_frame))

    @property
    def key(self) -> tuple[str, ...]:
        return ("path", self.path, str(self.start))

    def stamp(self, thing: Any) -> None:
        thing[CLIP_PROPERTY] = {"path": self.path, "start": self.start, "name": self.name}


def _stamped(thing: Any) -> Clip | None:
    value = thing.get(CLIP_PROPERTY) if thing is not None else None
    if value is None:
        return None
    try:
        return Clip(str(value["path"]), int(value["start"]), str(value.get("name", "")))
    except (KeyError, TypeError, ValueError):
        return None


def clip_key(thing: Any, legacy_name: str) -> tuple[str, ...]:
    """The identity of an Oris datablock: its stamped clip, or (older files) the name it was given."""
    clip = _stamped(thing)
    return clip.key if clip else ("name", legacy_name)


def action_clip_key(strip: Any) -> tuple[str, ...]:
    """The clip an Oris NLA strip plays: its Action's stamp, or its own name (older files)."""
    return clip_key(strip.action, strip.name)


def sound_strips(scene: Any) -> Any:
    editor = scene.sequence_editor
    if editor is None:
        return []
    return editor.strips if hasattr(editor, "strips") else editor.sequences  # Blender 5 renamed sequences


def strip_start(strip: Any) -> int:
    """The frame a sound strip's first sample plays at (Blender 5.2 renamed frame_start to content_start)."""
    start = getattr(strip, "content_start", None)
    return int(round(strip.frame_start if start is None else start))


def strip_trimmed(strip: Any) -> bool:
    """Whether the sequencer cuts the strip's start or end (5.2: content_trim_*, before: frame_offset_*)."""
    if hasattr(strip, "content_trim_start"):
        return bool(strip.content_trim_start > 0 or strip.content_trim_end > 0)
    return bool(strip.frame_offset_start > 0 or strip.frame_offset_end > 0)


def oris_sound_key(strip: Any) -> tuple[str, ...] | None:
    """The clip an Oris sound strip plays; None for the artist's own strips."""
    if strip.type != "SOUND" or not (strip.get(SOUND_FLAG) or strip.get(CLIP_PROPERTY)):
        return None
    return clip_key(strip, strip.name)


def words_key(text: Any) -> tuple[str, ...] | None:
    """The audio file an Oris words Text holds the words of (older files: the clip name); None for the artist's
    own texts."""
    if not (text.get(WORDS_FLAG) or text.get(CLIP_PROPERTY)):
        return None
    clip = _stamped(text)
    if clip is not None:
        return ("path", clip.path)
    name = str(text.name)
    return ("name", name[: -len(WORDS_SUFFIX)] if name.endswith(WORDS_SUFFIX) else name)


def _names_in_use() -> dict[str, set[str]]:
    """Every clip name Oris's datablocks in this file use, with the audio files that use it ("" for datablocks of
    older files, which remember no file)."""
    used: dict[str, set[str]] = {}
    things = [*bpy.data.actions, *bpy.data.texts,
              *(s for scene in bpy.data.scenes for s in sound_strips(scene) if oris_sound_key(s) is not None)]
    for thing in things:
        clip = _stamped(thing)
        if clip and clip.name:
            used.setdefault(clip.name, set()).add(clip.path)
        elif clip is None and getattr(thing, "type", "") == "SOUND":
            used.setdefault(str(thing.name), set()).add("")
        elif clip is None and isinstance(thing, bpy.types.Text):
            legacy = words_key(thing)
            if legacy is not None:
                used.setdefault(legacy[1], set()).add("")
    return used


def named(clip: Clip) -> Clip:
    """The clip with its audio file's readable name: the one the file already has here, else its file name, else
    the parent folder and file name, else that with a number, whichever no other file uses."""
    used = _names_in_use()
    for name, paths in used.items():
        if clip.path in paths:
            return Clip(clip.path, clip.start, name)
    base = os.path.basename(clip.path)
    folder = os.path.basename(os.path.dirname(clip.path))
    candidates = [base, f"{folder}/{base}" if folder else base]
    candidates += [f"{candidates[-1]} ({n})" for n in range(2, len(used) + 3)]
    name = next(name for name in candidates if name not in used)
    return Clip(clip.path, clip.start, name)


def clip_still_animates(key: tuple[str, ...]) -> bool:
    """Whether an Oris strip anywhere in the file still plays this clip."""
    for action in bpy.data.actions:
        if action.users and action.name.startswith(ACTION_PREFIX) and clip_key(action, action.name[len(ACTION_PREFIX):]) == key:
            return True
    return False


def remove_sounds(scene: Any, keys: set[tuple[str, ...]]) -> list[str]:
    """Remove Oris's sound strips of these clips from the scene's sequencer; returns their names."""
    removed = []
    strips = sound_strips(scene)
    for strip in list(strips):
        if oris_sound_key(strip) in keys:
            removed.append(str(strip.name))
            strips.remove(strip)
    return removed


def sound_path(strip: Any) -> str:
    """A sound strip's file, absolute and normalized as Clip paths are."""
    return os.path.normcase(os.path.realpath(bpy.path.abspath(strip.sound.filepath, library=strip.sound.library)))


def plays_already(scene: Any, clip: Clip) -> Any:
    """The artist's own sound strip that already plays this clip's file from its start frame, if any."""
    for strip in sound_strips(scene):
        if strip.type != "SOUND" or oris_sound_key(strip) is not None or strip.sound is None:
            continue
        if sound_path(strip) == clip.path and strip_start(strip) == clip.start:
            return strip
    return None
