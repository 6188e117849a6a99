"""Thin operators over oris.blender.lipsync. Generate is modal: the worker runs in a thread,
the UI stays responsive with a progress bar, Esc cancels with no change to the scene, and the
keys are written on the main thread in one undoable step. In background mode it runs at once."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import bpy
from mathutils import Vector

from ..blender import lipsync, session
from ..blender.bake import BakeError, bake
from ..blender.contact import HeadSpec, run_contact
from ..blender.dialogue import character_meshes, scene_lines
from ..blender.shapekeys import EditError, shape_key_names
from ..core.align import Transcript
from ..core.audio import AudioError, read_text_input
from ..core.contact import ContactError, ContactSettings
from ..core.curves import CurveSettings
from ..core.outputs import Labelled, check_outputs, write_text
from ..core.rigs import Preset, RigError, detect, preset_from_rows, preset_rows, why_chosen
from ..engine.client import Cancelled, WorkerError
from ..engine.model import ModelError, find_model
from .preferences import preferences

_running = threading.Lock()  # one lip sync at a time


def _targets(context: bpy.types.Context) -> list[Any]:
    return [ob for ob in context.selected_objects if ob.type == "MESH"] or ([context.active_object] if context.active_object else [])


def _options(s: Any) -> dict[str, Any]:
    """The panel's choices every line shares (lipsync.prepare's keyword arguments)."""
    custom = None
    if s.preset == "custom":
        try:
            custom = mapping_preset(s)
        except ValueError as exc:
            raise RigError(str(exc)) from None
    return dict(preset="auto" if s.preset == "custom" else s.preset, custom=custom,
                settings=CurveSettings(lead_seconds=s.lead_ms / 1000.0, intensity=s.intensity, jaw=s.jaw,
                                       lips=s.lips, stepped=s.stepped),
                extend_range=s.extend_range, card=find_model().card, existing_animation=s.existing_animation.lower(),
                language=s.language, add_sound=s.add_sound, keep_overlapping=s.keep_overlapping,
                jaw_degrees=s.jaw_degrees or None)


def _job(context: bpy.types.Context) -> lipsync.LipSyncJob:
    s = context.scene.oris_lipsync
    if not s.audio_path:
        raise AudioError("choose an audio file first")
    return lipsync.prepare(context.scene, _targets(context), s.audio_path, **_options(s),
                           start_frame=None if s.use_current_frame else s.start_frame, transcript=_transcript(s),
                           recognize=s.transcript_source == "RECOGNIZE")


def _transcript(s: Any) -> Transcript | None:
    """The words from the chosen source; None to recognize them or to use the audio alone."""
    source = s.transcript_source
    if source == "TEXT":
        if not s.transcript.strip():
            raise AudioError("type the words spoken, or choose another source of words")
        return Transcript(s.transcript, s.language)
    if source == "TEXT_BLOCK":
        if s.transcript_block is None:
            raise AudioError("choose the text datablock holding the words, or another source of words")
        return Transcript(s.transcript_block.as_string(), s.language)
    if source == "FILE":
        if not s.transcript_file:
            raise AudioError("choose the transcript file, or another source of words")
        return Transcript(read_text_input(bpy.path.abspath(s.transcript_file), "the transcript file"), s.language)
    return None


def mapping_preset(s: Any) -> Preset:
    return preset_from_rows((row.target, row.key, row.weight) for row in s.mapping)


def _fill_mapping(s: Any, rows: list[tuple[str, str, float]]) -> None:
    s.mapping.clear()
    for target, key, weight in rows:
        row = s.mapping.add()
        row.target, row.key, row.weight = target, key, weight
    s.mapping_index = 0


class ORIS_OT_mapping_from_detected(bpy.types.Operator):
    bl_idname = "oris.mapping_from_detected"
    bl_label = "Start from Detected"
    bl_description = "Fill the custom mapping with the detected preset, in the selected rig's own key names"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        keyed = [ob for ob in _targets(context) if ob.type == "MESH" and ob.data.shape_keys]
        if not keyed:
            self.report({"ERROR"}, "select the face mesh with the shape keys first")
            return {"CANCELLED"}
        names = sorted({n for ob in keyed for n in shape_key_names(ob.data.shape_keys)})
        match = detect(names)[0]
        _fill_mapping(context.scene.oris_lipsync, preset_rows(match.preset, match.mapping))
        self.report({"INFO"}, f"Started from {match.preset.label}")
        return {"FINISHED"}


class ORIS_OT_mapping_row(bpy.types.Operator):
    bl_idname = "oris.mapping_row"
    bl_label = "Add or Remove Row"
    bl_options = {"REGISTER", "UNDO"}
    action: bpy.props.EnumProperty(items=[("ADD", "Add", "Add a row"), ("REMOVE", "Remove", "Remove the active row")])

    def execute(self, context: bpy.types.Context) -> set[str]:
        s = context.scene.oris_lipsync
        if self.action == "ADD":
            s.mapping.add()
            s.mapping_index = len(s.mapping) - 1
        elif 0 <= s.mapping_index < len(s.mapping):
            s.mapping.remove(s.mapping_index)
            s.mapping_index = max(0, s.mapping_index - 1)
        return {"FINISHED"}


class ORIS_OT_mapping_save(bpy.types.Operator):
    bl_idname = "oris.mapping_save"
    bl_label = "Save Mapping"
    bl_description = "Save the custom mapping as an Oris preset (JSON) for other shots and projects"
    filepath: bpy.props.StringProperty(subtype="FILE_PATH")
    filter_glob: bpy.props.StringProperty(default="*.json", options={"HIDDEN"})

    def invoke(self, context: bpy.types.Context, event: Any) -> set[str]:
        self.filepath = self.filepath or "oris_mapping.json"
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        props = context.scene.oris_lipsync
        out = Labelled("the mapping file", Path(bpy.path.abspath(self.filepath)))
        inputs = [Labelled("the open .blend file", Path(bpy.data.filepath))] if bpy.data.filepath else []
        if props.audio_path:
            inputs.append(Labelled("the audio", Path(bpy.path.abspath(props.audio_path))))
        try:
            text = mapping_preset(props).to_json()
            check_outputs([out], inputs)
            write_text(out, text)
        except (ValueError, OSError) as exc:
            self.report({"ERROR"}, f"cannot save the mapping: {exc}")
            return {"CANCELLED"}
        return {"FINISHED"}


class ORIS_OT_mapping_load(bpy.types.Operator):
    bl_idname = "oris.mapping_load"
    bl_label = "Load Mapping"
    bl_description = "Load an Oris preset (JSON) into the custom mapping"
    bl_options = {"REGISTER", "UNDO"}
    filepath: bpy.props.StringProperty(subtype="FILE_PATH")
    filter_glob: bpy.props.StringProperty(default="*.json", options={"HIDDEN"})

    def invoke(self, context: bpy.types.Context, event: Any) -> set[str]:
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            preset = Preset.from_json(Path(bpy.path.abspath(self.filepath)).read_text(encoding="utf-8"))
        except (ValueError, OSError, KeyError) as exc:
            self.report({"ERROR"}, f"cannot load {self.filepath}: {exc}")
            return {"CANCELLED"}
        s = context.scene.oris_lipsync
        _fill_mapping(s, preset_rows(preset))
        s.preset = "custom"
        return {"FINISHED"}


def _worker(context: bpy.types.Context) -> Any:
    prefs = preferences(context)
    return session.get_worker(prefs.worker_python if prefs else "", prefs.device if prefs else "auto")


class _LipSyncRun(bpy.types.Operator):
    """What both lip sync operators do: make the jobs, analyse them in a thread (one worker session, one
    progress bar, Esc cancels with no change), then write them all on the main thread in one undo step.
    Never registered itself: Blender maps one Python class to each registered operator."""

    _timer: Any = None
    _thread: threading.Thread | None = None
    _cancel: threading.Event
    _outcome: dict[str, Any]
    _jobs: list[lipsync.LipSyncJob]
    _notes: list[str]

    def _make_jobs(self, context: bpy.types.Context) -> list[lipsync.LipSyncJob]:
        raise NotImplementedError

    def _start(self, context: bpy.types.Context) -> bool:
        if not _running.acquire(blocking=False):
            self.report({"ERROR"}, "A lip sync is already running; wait for it or press Esc to cancel it")
            return False
        self._notes = []
        try:
            self._jobs = self._make_jobs(context)
        except (AudioError, RigError, EditError, ModelError, ValueError) as exc:
            _running.release()
            self.report({"ERROR"}, str(exc))
            return False
        return True

    def _analyze(self, worker: Any, progress: Any = None, cancel: threading.Event | None = None) -> list[Any]:
        """Every job's analysis in turn, in one worker session; progress runs over all of them."""
        results = []
        for i, job in enumerate(self._jobs):
            def share(f: float, i: int = i) -> None:
                if progress is not None:
                    progress((i + f) / len(self._jobs))
            results.append(job.analyze(worker, share, cancel))
        return results

    def _finish(self, context: bpy.types.Context, results: list[Any]) -> set[str]:
        reports = []
        try:
            for job, result in zip(self._jobs, results):
                reports.append(job.apply(result))
        except (RigError, EditError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        finally:
            _running.release()
        s = context.scene.oris_lipsync
        if len(reports) == 1:
            report = reports[0]
            s.status = (f"{report.keys_written} keys ({report.keys_per_second:.0f}/s) on {', '.join(report.targets)}, "
                        f"frames {report.start_frame}-{report.end_frame:.0f}, {report.mode} mode")
        else:
            s.status = (f"{len(reports)} lines on {len({t for r in reports for t in r.targets})} face(s), "
                        f"{sum(r.keys_written for r in reports)} keys")
        words = [r.words_text for r in reports if r.words_text]
        if words:
            s.recognized_text = bpy.data.texts.get(words[-1])
        for note in self._notes + [n for r in reports for n in r.notes]:
            self.report({"WARNING"}, note)
        self.report({"INFO"}, f"Oris: {s.status}")
        return {"FINISHED"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        if not self._start(context):
            return {"CANCELLED"}
        try:
            results = self._analyze(_worker(context))
        except (WorkerError, Cancelled) as exc:
            _running.release()
            self.report({"ERROR"}, f"Oris worker: {exc}")
            return {"CANCELLED"}
        except BaseException:
            _running.release()  # whatever went wrong, the next lip sync may run
            raise
        return self._finish(context, results)

    def invoke(self, context: bpy.types.Context, event: Any) -> set[str]:
        if bpy.app.background:
            return self.execute(context)
        if not self._start(context):
            return {"CANCELLED"}
        self._cancel = threading.Event()
        self._outcome = {}
        s = context.scene.oris_lipsync
        s.progress, s.status = 0.0, "starting the worker..."
        worker = _worker(context)

        def work() -> None:
            try:
                self._outcome["results"] = self._analyze(
                    worker, lambda f: self._outcome.__setitem__("progress", f), self._cancel)
            except Exception as exc:  # reported on the main thread
                self._outcome["error"] = exc

        self._thread = threading.Thread(target=work, daemon=True)
        self._thread.start()
        self._timer = context.window_manager.event_timer_add(0.1, window=context.window)
        context.window_manager.modal_handler_add(self)
        context.window_manager.progress_begin(0, 100)
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: Any) -> set[str]:
        s = context.scene.oris_lipsync
        if event.type == "ESC":
            self._cancel.set()
            s.status = "cancelling..."
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        s.progress = self._outcome.get("progress", 0.0)
        if not self._cancel.is_set():
            s.status = f"analysing speech... {s.progress:.0%}"
        context.window_manager.progress_update(int(s.progress * 100))
        if self._thread is not None and self._thread.is_alive():
            return {"RUNNING_MODAL"}
        context.window_manager.event_timer_remove(self._timer)
        context.window_manager.progress_end()
        for area in context.screen.areas if context.screen else []:
            area.tag_redraw()
        error = self._outcome.get("error")
        if error is not None or self._cancel.is_set():
            _running.release()
            s.status = "cancelled: nothing was changed" if isinstance(error, Cancelled) or self._cancel.is_set() else f"failed: {error}"
            self.report({"WARNING"} if self._cancel.is_set() else {"ERROR"}, f"Oris: {s.status}")
            return {"CANCELLED"}
        return self._finish(context, self._outcome["results"])

    def cancel(self, context: bpy.types.Context) -> None:
        """Blender ends the run itself (another file is opened, the window closes): stop the request
        and write nothing; the worker thread ends on its own at the next window."""
        self._cancel.set()
        if self._timer is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None
        context.window_manager.progress_end()
        _running.release()


class ORIS_OT_lipsync(_LipSyncRun):
    bl_idname = "oris.lipsync"
    bl_label = "Generate Lip Sync"
    bl_description = "Animate the selected face meshes' shape keys from the audio file"
    bl_options = {"REGISTER", "UNDO"}

    def _make_jobs(self, context: bpy.types.Context) -> list[lipsync.LipSyncJob]:
        return [_job(context)]


class ORIS_OT_lipsync_dialogue(_LipSyncRun):
    bl_idname = "oris.lipsync_dialogue"
    bl_label = "Lip Sync Scene Dialogue"
    bl_description = ("Lip-sync every sound strip of the sequencer on its character (strip name '<object>:...', or "
                      "the channels mapped below), each at its own frame; the strips stay as they are")
    bl_options = {"REGISTER", "UNDO"}

    def _make_jobs(self, context: bpy.types.Context) -> list[lipsync.LipSyncJob]:
        s = context.scene.oris_lipsync
        channels = {row.channel: row.character.name for row in s.channels if row.character is not None}
        lines, self._notes = scene_lines(context.scene, channels)
        if not lines:
            raise ValueError("no sound strip in the sequencer is a character's line: name the strips "
                             "'<object>:...' or map their channels below (command line: --scene-strips with "
                             "--strip-channel CHANNEL=OBJECT)")
        options = _options(s)
        recognize = s.transcript_source != "NONE"  # each line's own words: recognized, unless audio alone
        return [lipsync.prepare(context.scene, character_meshes(line.character), line.strip.path, **options,
                                start_frame=line.strip.start, recognize=recognize) for line in lines]


class ORIS_OT_use_words(bpy.types.Operator):
    bl_idname = "oris.use_words"
    bl_label = "Use as Transcript"
    bl_description = ("Run the lip sync again with the recognized words, as corrected in the Text Editor, as the "
                      "transcript (the quick fix for a misheard word)")
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        s = context.scene.oris_lipsync
        if s.recognized_text is None:
            self.report({"ERROR"}, "no recognized words yet: generate the lip sync with Words set to Recognize first")
            return {"CANCELLED"}
        s.transcript_source, s.transcript_block = "TEXT_BLOCK", s.recognized_text
        return bpy.ops.oris.lipsync("INVOKE_DEFAULT")


class ORIS_OT_detect(bpy.types.Operator):
    bl_idname = "oris.detect_rig"
    bl_label = "Detect Rig"
    bl_description = "Show which preset matches the selected meshes' shape keys, and what it misses"

    def execute(self, context: bpy.types.Context) -> set[str]:
        s = context.scene.oris_lipsync
        keyed = [ob for ob in _targets(context) if ob.type == "MESH" and ob.data.shape_keys]
        if not keyed:
            s.detection = "no selected mesh has shape keys"
            return {"CANCELLED"}
        s.detection = why_chosen(sorted({n for ob in keyed for n in shape_key_names(ob.data.shape_keys)}))
        self.report({"INFO"}, s.detection)
        return {"FINISHED"}


class ORIS_OT_contact(bpy.types.Operator):
    bl_idname = "oris.contact"
    bl_label = "Generate Contact"
    bl_description = ("Animate the two heads into contact at the lips (approach, tilt, hold, part), check every "
                      "frame for penetration, and replace Oris's earlier contact animation on them")
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        s = context.scene.oris_contact
        settings = ContactSettings(
            contact_frame=s.contact_frame, approach_seconds=s.approach, hold_seconds=s.hold, release_seconds=s.release,
            leader=s.leader, tilt_side=s.tilt_side, tilt_degrees=None if s.auto_tilt else s.tilt_degrees,
            eye_strength=s.eyes, pucker_strength=s.pucker, anticipation=s.anticipation,
            existing_animation=s.existing_animation.lower())
        specs = [HeadSpec(s.head_a, s.bone_a, s.lips_a, s.lip_group_a, facing=s.facing_a),
                 HeadSpec(s.head_b, s.bone_b, s.lips_b, s.lip_group_b, facing=s.facing_b)]
        try:
            report = run_contact(context.scene, specs[0], specs[1], settings)
        except (ContactError, EditError) as exc:
            s.status, s.worst_frame = f"failed: {exc}", -1
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        summary = report.summary
        s.status = (f"Contact at frame {summary['first_contact_frame']}, roll {report.plan['roll_degrees']:g} deg\n"
                    f"Penetration {summary['max_penetration_mm']:.2f} mm, nose clearance {summary['nose_clearance_mm']:.1f} mm\n"
                    f"Lips touching on {100 * summary['hold_gap_ok_share']:.0f}% of the hold")
        s.worst_frame = int(summary["worst_frame"])
        s.report_json = report.to_json()
        for note in report.notes:
            self.report({"WARNING"}, note)
        self.report({"INFO"}, "Oris: " + report.brief())
        return {"FINISHED"}


class ORIS_OT_contact_lip_from_selection(bpy.types.Operator):
    bl_idname = "oris.contact_lip_from_selection"
    bl_label = "Lip Point from Selection"
    bl_description = ("Put an empty at the selected vertices of the active mesh (pick them in Edit Mode) and use it "
                      "as this head's lip contact point")
    bl_options = {"REGISTER", "UNDO"}
    side: bpy.props.EnumProperty(items=[("A", "A", "Head A"), ("B", "B", "Head B")])

    def execute(self, context: bpy.types.Context) -> set[str]:
        ob = context.active_object
        if ob is None or ob.type != "MESH":
            self.report({"ERROR"}, "make the face mesh active and select its lip vertices in Edit Mode first")
            return {"CANCELLED"}
        if ob.mode == "EDIT":
            ob.update_from_editmode()
        picked = [v.co for v in ob.data.vertices if v.select]
        if not picked:
            self.report({"ERROR"}, f"no vertex of {ob.name} is selected; select the lip vertices in Edit Mode first")
            return {"CANCELLED"}
        empty = bpy.data.objects.new(f"{ob.name} Lips", None)
        empty.empty_display_type = "SPHERE"
        size, scale = ob.dimensions, ob.matrix_world.to_scale()  # a marker 2% of the head's size, any units
        empty.empty_display_size = 0.02 * max(size.x, size.y, size.z) / max(scale.x, scale.y, scale.z, 1e-9)
        for collection in ob.users_collection:
            collection.objects.link(empty)
        empty.parent = ob  # it follows the head; its location is in the mesh's own space
        empty.location = sum(picked, Vector()) / len(picked)
        context.view_layer.update()
        setattr(context.scene.oris_contact, f"lips_{self.side.lower()}", empty)
        self.report({"INFO"}, f"Head {self.side}: lip point {empty.name} at {len(picked)} selected vertices")
        return {"FINISHED"}


class ORIS_OT_contact_worst_frame(bpy.types.Operator):
    bl_idname = "oris.contact_worst_frame"
    bl_label = "Jump to Worst Frame"
    bl_description = "Go to the frame where the heads came closest to passing through each other"

    def execute(self, context: bpy.types.Context) -> set[str]:
        frame = context.scene.oris_contact.worst_frame
        if frame < 0:
            return {"CANCELLED"}
        context.scene.frame_set(frame)
        return {"FINISHED"}


class ORIS_OT_channel_row(bpy.types.Operator):
    bl_idname = "oris.channel_row"
    bl_label = "Add or Remove Channel"
    bl_description = "Map a sequencer channel to the character whose lines its sound strips are"
    bl_options = {"REGISTER", "UNDO"}
    index: bpy.props.IntProperty(default=-1, description="The row to remove; -1 adds one")

    def execute(self, context: bpy.types.Context) -> set[str]:
        rows = context.scene.oris_lipsync.channels
        if self.index < 0:
            row = rows.add()
            row.channel = max((r.channel for r in rows), default=0) + 1 if len(rows) > 1 else 1
        elif self.index < len(rows):
            rows.remove(self.index)
        return {"FINISHED"}


class ORIS_OT_bake(bpy.types.Operator):
    bl_idname = "oris.bake"
    bl_label = "Bake Lip Sync to Action"
    bl_description = ("Flatten Oris's strips on the selected objects (all, when none is selected) into one Action "
                      "for FBX and glTF export; Oris's tracks are muted, not deleted (command line: oris bake)")
    bl_options = {"REGISTER", "UNDO"}
    include_nla: bpy.props.BoolProperty(name="Include My NLA", default=False,
                                        description="Bake your own NLA tracks and Actions on those channels into it "
                                                    "too (--include-nla)")

    def execute(self, context: bpy.types.Context) -> set[str]:
        objects = list(context.selected_objects) or list(context.scene.objects)
        try:
            report = bake(context.scene, objects, include_nla=self.include_nla)
        except BakeError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        for note in report.notes:
            self.report({"INFO"}, note)
        self.report({"INFO"}, f"Oris: baked {report.curves} curves of {', '.join(report.datablocks)} into "
                              f"{report.action!r}, frames {report.frames[0]}-{report.frames[1]}")
        return {"FINISHED"}


CLASSES = (ORIS_OT_lipsync, ORIS_OT_lipsync_dialogue, ORIS_OT_bake, ORIS_OT_channel_row, ORIS_OT_use_words, ORIS_OT_detect, ORIS_OT_mapping_from_detected, ORIS_OT_mapping_row, ORIS_OT_mapping_save,
           ORIS_OT_mapping_load, ORIS_OT_contact, ORIS_OT_contact_lip_from_selection, ORIS_OT_contact_worst_frame)
