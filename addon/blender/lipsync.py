"""Lip sync inside Blender, in three steps so a modal operator can run the middle one in a thread:

    job = prepare(context.scene, objects, audio_path, ...)   # main thread: validate, decode
    result = job.analyze(worker, on_progress, cancel)        # any thread: the worker runs the model
    report = job.apply(result)                                # main thread: keys, NLA strip, sound

`run()` chains them for scripts and headless batch jobs. Nothing is written until apply(), and
apply() checks everything before writing, so a failure or a cancel leaves the file unchanged.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
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
from .audio import decode_with_aud
from .files import blend_path
from .shapekeys import ApplyReport, EditError, KeyTarget, apply_animation, resolve_targets

SOUND_CHANNEL_NAME = "Oris"


def scene_fps(scene: Any) -> float:
    return scene.render.fps / scene.render.fps_base


def strip_name_for(audio_path: str) -> str:
    return os.path.basename(audio_path)


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

    def analyze(self, worker: WorkerClient, on_progress: Callable[[float], None] | None = None,
                cancel: threading.Event | None = None) -> LipSyncResult:
        return analyze(self.audio.samples, worker, self.fps, self.settings, self.transcript, on_progress, cancel,
                       recognize=self.recognize, language=self.language)

    def apply(self, result: LipSyncResult) -> ApplyReport:
        name = strip_name_for(self.audio_path)
        report = apply_animation(result.animation, self.targets, name, self.start_frame, self.tolerance,
                                 self.existing_animation)
        if self.add_sound:
            place_sound(self.scene, self.audio_path, name, self.start_frame)
        if self.extend_range:
            self.scene.frame_start = min(self.scene.frame_start, self.start_frame)
            self.scene.frame_end = max(self.scene.frame_end, int(report.end_frame))
        report.notes = self.notes + report.notes + self.audio.warnings + result.warnings
        report.mode = result.mode
        if result.heard:
            report.words_text = keep_recognized_words(result, name)
            report.notes.append(f"the recognized words are in the text {report.words_text!r}: correct them in the "
                                "Text Editor and press Use as Transcript (command line: --text-file)")
        return report


WORDS_SUFFIX = " words"


def keep_recognized_words(result: LipSyncResult, clip_name: str) -> str:
    """The recognized words as a Text datablock named after the clip, where the artist can read and correct
    them; an earlier run's text of that name is replaced, a text of the artist's own is never touched."""
    name = clip_name + WORDS_SUFFIX
    text = bpy.data.texts.get(name)
    if text is None or not text.get("oris_recognized"):
        text = bpy.data.texts.new(name)
        text["oris_recognized"] = True
    text.clear()
    text.write(result.recognized_text + "\n")
    return str(text.name)


def prepare(scene: Any, objects: list[Any], audio_path: str, *, preset: str = "auto", custom: Preset | None = None,
            start_frame: int | None = None, settings: CurveSettings | None = None, transcript: Transcript | None = None,
            add_sound: bool = True, extend_range: bool = False, tolerance: float = DEFAULT_TOLERANCE,
            card: dict[str, Any] | None = None, recognize: bool = True, existing_animation: str = "keep",
            language: str = AUTO) -> LipSyncJob:
    """Validate the rig and decode the audio; raises RigError, EditError or AudioError with a user-facing message.
    existing_animation: keep, mute or refuse other animation on the mouth's shape keys (blender.existing)."""
    targets, notes = resolve_targets(objects, preset, custom, existing_animation)  # cheap checks first
    audio = decode_with_aud(bpy.path.abspath(audio_path))
    settings = decoding_settings(card or {}, settings or CurveSettings())
    start = scene.frame_current if start_frame is None else int(start_frame)
    end = start + audio.duration * scene_fps(scene)
    if not (-MAX_FRAME <= start and end <= MAX_FRAME):
        raise EditError(f"the clip would run from frame {start} to {end:.0f}, beyond Blender's frame range "
                        f"({-MAX_FRAME} to {MAX_FRAME}); choose an earlier start frame (--start-frame, or the "
                        "manifest's start_frame)")
    return LipSyncJob(scene, audio_path, audio, targets, start, scene_fps(scene), settings, transcript,
                      add_sound, extend_range, tolerance, recognize, existing_animation, notes, language)


def place_sound(scene: Any, audio_path: str, name: str, start_frame: int) -> Any:
    """The clip in the sequencer at the animation's start frame, replacing Oris's earlier one of that name.
    Its path is stored relative to the open .blend or absolute (files.blend_path), never relative to the
    working folder, so the saved shot finds its sound wherever it is opened from."""
    editor = scene.sequence_editor or scene.sequence_editor_create()
    strips = editor.strips if hasattr(editor, "strips") else editor.sequences
    for strip in list(strips):
        if strip.type == "SOUND" and strip.name == name and strip.get("oris"):
            strips.remove(strip)
    used = {s.channel for s in strips}  # a channel of its own, so no existing strip is shortened or moved
    channel = next((c for c in range(1, 129) if c not in used), 128)
    strip = strips.new_sound(name, blend_path(audio_path), channel, start_frame)
    strip["oris"] = True
    return strip


def run(scene: Any, objects: list[Any], audio_path: str, worker: WorkerClient, **options: Any) -> ApplyReport:
    """Prepare, analyze and apply in one call (scripts, headless and batch jobs)."""
    on_progress = options.pop("on_progress", None)
    cancel = options.pop("cancel", None)
    job = prepare(scene, objects, audio_path, **options)
    return job.apply(job.analyze(worker, on_progress, cancel))
