"""Lip sync inside Blender, in three steps so a modal operator can run the middle one in a thread:

    job = prepare(context.scene, objects, audio_path, ...)   # main thread: validate, decode
    result = job.analyze(worker, on_progress, cancel)        # any thread: the worker runs the model
    report = job.apply(result)                                # main thread: keys, NLA strip, sound

`run()` chains them for scripts and headless batch jobs. Nothing is written until apply(), and
apply() checks everything before writing, so a failure or a cancel leaves the file unchanged.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import bpy

from ..core.align import Transcript
from ..core.audio import DecodedAudio
from ..core.curves import CurveSettings
from ..core.keys import DEFAULT_TOLERANCE, MAX_FRAME
from ..core.languages import AUTO
from ..core.rigs import Preset
from ..engine.client import WorkerClient
from ..lipsync import LipSyncResult, analyze, decoding_settings
from . import existing
from .audio import decode_with_aud
from .clips import (
    SOUND_FLAG,
    WORDS_FLAG,
    WORDS_SUFFIX,
    Clip,
    clip_still_animates,
    named,
    plays_already,
    remove_sounds,
    sound_strips,
    words_key,
)
from .files import blend_path
from .jaw import JawBone, find_jaw
from .overrides import editable_override, make_editable, needs_override
from .shapekeys import ApplyReport, EditError, KeyTarget, apply_animation, resolve_targets

SOUND_CHANNEL_NAME = "Oris"


def scene_fps(scene: Any) -> float:
    return scene.render.fps / scene.render.fps_base


@dataclass
class LipSyncJob:
    scene: Any
    audio_path: str
    audio: DecodedAudio
    targets: list[KeyTarget]
    start_frame: int
    fps: float
    settings: CurveSettings
    transcript: Transcript | None
    add_sound: bool
    extend_range: bool
    tolerance: float
    recognize: bool = True
    existing_animation: str = "keep"
    notes: list[str] = field(default_factory=list)
    language: str = AUTO
    keep_overlapping: bool = False
    objects: list[Any] = field(default_factory=list)  # as given: a linked one is made an override in apply()
    preset: tuple[str, Preset | None] = ("auto", None)
    jaw: JawBone | None = None
    jaw_degrees: float | None = None  # None: the rig's own range, else the default

    def analyze(self, worker: WorkerClient, on_progress: Callable[[float], None] | None = None,
                cancel: threading.Event | None = None) -> LipSyncResult:
        # the jaw and lips intensities go onto each rig's own keys when they are written (apply)
        neutral = replace(self.settings, jaw=1.0, lips=1.0)
        return analyze(self.audio.samples, worker, self.fps, neutral, self.transcript, on_progress, cancel,
                       recognize=self.recognize, language=self.language)

    def apply(self, result: LipSyncResult) -> ApplyReport:
        override_notes: list[str] = []
        if any(ob is not None and needs_override(ob) for ob in self.objects):  # only now: a cancel changes nothing
            view_layer = bpy.context.view_layer if bpy.context.scene == self.scene else self.scene.view_layers[0]
            objects, override_notes = make_editable(self.objects, self.scene, view_layer)
            self.targets, _ = resolve_targets(objects, *self.preset, self.existing_animation)
            self.jaw, _ = find_jaw(self.targets, self.jaw_degrees)
            override_notes += [n for n in [editable_override(self.jaw.armature)] if n] if self.jaw else []
        clip = named(Clip.of(self.audio_path, self.start_frame))
        report = apply_animation(result.animation, self.targets, clip, self.tolerance, self.existing_animation,
                                 self.keep_overlapping, self.jaw, (self.settings.jaw, self.settings.lips))
        # a replaced clip's sound goes with it, once no strip anywhere plays that clip any more
        silenced = remove_sounds(self.scene, {k for k in report.replaced - {clip.key} if not clip_still_animates(k)})
        sound_notes = [f"removed the replaced clip's sound strip {name!r}" for name in silenced]
        if self.add_sound:
            artist_strip = plays_already(self.scene, clip)
            if artist_strip is None:
                place_sound(self.scene, self.audio_path, clip)
            else:
                sound_notes.append(f"the sequencer's strip {artist_strip.name!r} already plays this clip: no sound "
                                   "strip added")
        if self.extend_range:
            self.scene.frame_start = min(self.scene.frame_start, self.start_frame)
            self.scene.frame_end = max(self.scene.frame_end, int(report.end_frame))
        report.notes = self.notes + override_notes + report.notes + sound_notes + self.audio.warnings + result.warnings
        report.mode = result.mode
        if result.heard:
            report.words_text = keep_recognized_words(result, clip)
            report.notes.append(f"the recognized words are in the text {report.words_text!r}: correct them in the "
                                "Text Editor and press Use as Transcript (command line: --text-file)")
        return report


def keep_recognized_words(result: LipSyncResult, clip: Clip) -> str:
    """The recognized words as a Text datablock named after the clip, where the artist can read and correct
    them; an earlier run's text of this audio file is replaced, another file's or the artist's own is never
    touched."""
    text = next((t for t in bpy.data.texts if words_key(t) == ("path", clip.path)), None)
    if text is None:  # older files: Oris's text of this name, with no clip remembered
        legacy = bpy.data.texts.get(clip.name + WORDS_SUFFIX)
        text = legacy if legacy is not None and words_key(legacy) == ("name", clip.name) else None
    if text is None:
        text = bpy.data.texts.new(clip.name + WORDS_SUFFIX)
    text[WORDS_FLAG] = True
    clip.stamp(text)
    text.clear()
    text.write(result.recognized_text + "\n")
    return str(text.name)


def prepare(scene: Any, objects: list[Any], audio_path: str, *, preset: str = "auto", custom: Preset | None = None,
            start_frame: int | None = None, settings: CurveSettings | None = None, transcript: Transcript | None = None,
            add_sound: bool = True, extend_range: bool = False, tolerance: float = DEFAULT_TOLERANCE,
            card: dict[str, Any] | None = None, recognize: bool = True, existing_animation: str = "keep",
            language: str = AUTO, keep_overlapping: bool = False, jaw_degrees: float | None = None) -> LipSyncJob:
    """Validate the rig and decode the audio; raises RigError, EditError or AudioError with a user-facing message.
    existing_animation: keep, mute or refuse other animation on the mouth's shape keys (blender.existing).
    add_sound: put the clip in the sequencer (unless a strip of the artist's already plays it there);
    keep_overlapping: stack the new clip over Oris's strips it overlaps, where by default it replaces them."""
    targets, notes = resolve_targets(objects, preset, custom, existing_animation)  # cheap checks first
    jaw, jaw_notes = find_jaw(targets, jaw_degrees)
    notes += jaw_notes
    if jaw is not None:
        existing.check(jaw.armature, jaw.rotation_paths, existing_animation, jaw.armature.name, "lip sync")
    audio = decode_with_aud(bpy.path.abspath(audio_path))
    settings = decoding_settings(card or {}, settings or CurveSettings())
    start = scene.frame_current if start_frame is None else int(start_frame)
    end = start + audio.duration * scene_fps(scene)
    if not (-MAX_FRAME <= start and end <= MAX_FRAME):
        raise EditError(f"the clip would run from frame {start} to {end:.0f}, beyond Blender's frame range "
                        f"({-MAX_FRAME} to {MAX_FRAME}); choose an earlier start frame (--start-frame, or the "
                        "manifest's start_frame)")
    return LipSyncJob(scene, audio_path, audio, targets, start, scene_fps(scene), settings, transcript,
                      add_sound, extend_range, tolerance, recognize, existing_animation, notes, language,
                      keep_overlapping, list(objects), (preset, custom), jaw, jaw_degrees)


def place_sound(scene: Any, audio_path: str, clip: Clip) -> Any:
    """The clip in the sequencer at the animation's start frame, replacing Oris's earlier sound of this clip.
    Its path is stored relative to the open .blend or absolute (files.blend_path), never relative to the
    working folder, so the saved shot finds its sound wherever it is opened from."""
    if scene.sequence_editor is None:
        scene.sequence_editor_create()
    remove_sounds(scene, {clip.key, ("name", clip.name)})
    strips = sound_strips(scene)
    used = {s.channel for s in strips}  # a channel of its own, so no existing strip is shortened or moved
    channel = next((c for c in range(1, 129) if c not in used), 128)
    strip = strips.new_sound(clip.name, blend_path(audio_path), channel, clip.start)
    strip[SOUND_FLAG] = True
    clip.stamp(strip)
    return strip


def run(scene: Any, objects: list[Any], audio_path: str, worker: WorkerClient, **options: Any) -> ApplyReport:
    """Prepare, analyze and apply in one call (scripts, headless and batch jobs)."""
    on_progress = options.pop("on_progress", None)
    cancel = options.pop("cancel", None)
    job = prepare(scene, objects, audio_path, **options)
    return job.apply(job.analyze(worker, on_progress, cancel))
