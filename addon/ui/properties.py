"""Scene settings for the Oris panel."""

from __future__ import annotations

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)

from ..core.curves import DEFAULT_LEAD_MS
from ..core.languages import AUTO, LANGUAGES
from ..core.rigs import PRESETS
from ..core.visemes import VISEMES


def _preset_items(_self: object, _context: object) -> list[tuple[str, str, str]]:
    return [("auto", "Auto", "Detect the convention from the shape-key names")] + [
        (p.name, p.label, p.label) for p in PRESETS.values()] + [("custom", "Custom", "Your own mapping, edited below and saved or loaded as JSON")]


def _mapping_targets(_self: object, _context: object) -> list[tuple[str, str, str]]:
    return [(v, v, f"Viseme {v}") for v in VISEMES] + [
        ("blink", "blink", "Eyes closed (contact)"), ("pucker", "pucker", "Lips puckered (contact)")]


class OrisMappingRow(bpy.types.PropertyGroup):
    target: EnumProperty(name="Viseme", items=_mapping_targets)
    key: StringProperty(name="Shape key")
    weight: FloatProperty(name="Weight", default=1.0, min=0.0, max=2.0)


class OrisChannelRow(bpy.types.PropertyGroup):
    channel: IntProperty(name="Channel", default=1, min=1, max=128, description="A sequencer channel")
    character: PointerProperty(name="Character", type=bpy.types.Object,
                               description="Whose lines the sound strips on this channel are: the face mesh, its "
                                           "armature, or a linked character")


_EXISTING = [("KEEP", "Keep Below", "An action already on these channels moves to the NLA, below Oris's track: "
                                   "its other channels play on (command line: --existing-animation keep)"),
             ("MUTE", "Mute", "It moves to the NLA, muted (--existing-animation mute)"),
             ("REFUSE", "Refuse", "Stop and change nothing (--existing-animation refuse)")]


class OrisLipSyncSettings(bpy.types.PropertyGroup):
    audio_path: StringProperty(name="Audio", subtype="FILE_PATH", description="Speech: wav, flac, ogg, mp3")
    transcript_source: EnumProperty(name="Words", default="RECOGNIZE", items=[
        ("RECOGNIZE", "Recognize", "The worker's speech recognizer hears the words; they are kept in a text to correct"),
        ("TEXT", "Typed", "The words typed below"),
        ("TEXT_BLOCK", "Text Block", "A text datablock: a transcript, or the corrected words of an earlier run"),
        ("FILE", "File", "A transcript file"),
        ("NONE", "Audio Only", "No words: the fastest, and the least accurate at closures"),
    ], description="Where the words come from: they place the closures and the mouth shapes")
    language: EnumProperty(name="Language", default=AUTO, items=[
        (AUTO, "Auto", "The script's words, or else the speech recognizer, name the language"),
        *((code, name, f"The speech and its words are in {name}") for code, (_voice, name) in LANGUAGES.items()),
    ], description="The language of the speech and its words")
    transcript: StringProperty(name="Transcript", description="The words spoken, for transcript-guided timing")
    transcript_block: PointerProperty(name="Text", type=bpy.types.Text, description="The text datablock holding the words")
    transcript_file: StringProperty(name="File", subtype="FILE_PATH", description="A text file holding the words")
    recognized_text: PointerProperty(name="Recognized", type=bpy.types.Text,
                                     description="The words the last run recognized, to read and correct")
    preset: EnumProperty(name="Preset", items=_preset_items)
    mapping: CollectionProperty(type=OrisMappingRow, description="The custom mapping: viseme -> shape key, weight")
    mapping_index: IntProperty(name="Row")
    channels: CollectionProperty(type=OrisChannelRow, description="Scene dialogue: sequencer channel -> character "
                                 "(command line: --strip-channel CHANNEL=OBJECT)")
    intensity: FloatProperty(name="Intensity", default=1.0, min=0.0, max=2.0, description="Scale of the open shapes")
    jaw: FloatProperty(name="Jaw", default=1.0, min=0.0, max=2.0,
                       description="How far the jaw opens, on top of Intensity (--jaw)")
    lips: FloatProperty(name="Lips", default=1.0, min=0.0, max=2.0,
                        description="How far the lips round, spread and press into each shape, on top of Intensity (--lips)")
    stepped: BoolProperty(name="Stepped", default=False, description="One held shape at a time (2D / cut-out rigs)")
    lead_ms: FloatProperty(name="Lead (ms)", default=DEFAULT_LEAD_MS, min=-500.0, max=500.0, description="How far the mouth leads the sound")
    use_current_frame: BoolProperty(name="Start at current frame", default=True)
    start_frame: IntProperty(name="Start frame", default=1)
    extend_range: BoolProperty(name="Fit scene range", default=False, description="Grow the scene's frame range to cover the clip")
    existing_animation: EnumProperty(name="Existing Animation", items=_EXISTING, default="KEEP",
                                     description="What happens to an action that already keys the mouth's shape keys")
    keep_overlapping: BoolProperty(name="Keep Overlapping Takes", default=False,
                                   description="Stack the new clip over Oris's clips it overlaps on these heads, as an "
                                               "alternate take; by default it replaces them, and their sound "
                                               "(command line: --keep-overlapping)")
    jaw_degrees: FloatProperty(name="Jaw (deg)", default=0.0, min=0.0, max=60.0,
                               description="How far a jaw bone turns for a wide open vowel; 0: the bone's own "
                                           "jaw_open_degrees property, else 20 (command line: --jaw-degrees)")
    add_sound: BoolProperty(name="Add Sound Strip", default=True,
                            description="Put the clip in the sequencer at its start frame, unless a strip already "
                                        "plays it there (command line: --no-sound leaves the sequencer alone)")
    detection: StringProperty(name="Detection")
    status: StringProperty(name="Status")
    progress: FloatProperty(name="Progress", min=0.0, max=1.0, subtype="FACTOR")


_FACING = [("AUTO", "Auto", "From the pucker shape key")] + [
    (a, a, f"The face looks along the object's (or bone's) local {a} axis") for a in ("-Y", "+Y", "-X", "+X", "-Z", "+Z")]


def _is_head(_self: object, ob: bpy.types.Object) -> bool:
    return ob.type in ("MESH", "EMPTY", "ARMATURE")


class OrisContactSettings(bpy.types.PropertyGroup):
    head_a: PointerProperty(name="Head A", type=bpy.types.Object, poll=_is_head,
                            description="A face mesh, the parent of the face meshes, or an armature")
    bone_a: StringProperty(name="Bone", description="Head bone of an armature (empty: found by name)")
    lips_a: PointerProperty(name="Lip point", type=bpy.types.Object, description="Optional: an empty at the lips")
    lip_group_a: StringProperty(name="Lip group", description="Optional: a vertex group of the face mesh at the lips")
    facing_a: EnumProperty(name="Facing", items=_FACING)
    head_b: PointerProperty(name="Head B", type=bpy.types.Object, poll=_is_head)
    bone_b: StringProperty(name="Bone", description="Head bone of an armature (empty: found by name)")
    lips_b: PointerProperty(name="Lip point", type=bpy.types.Object, description="Optional: an empty at the lips")
    lip_group_b: StringProperty(name="Lip group", description="Optional: a vertex group of the face mesh at the lips")
    facing_b: EnumProperty(name="Facing", items=_FACING)
    contact_frame: IntProperty(name="Contact frame", default=48, description="The frame the lips meet")
    approach: FloatProperty(name="Approach (s)", default=1.0, min=0.1, max=10.0)
    hold: FloatProperty(name="Hold (s)", default=1.5, min=0.1, max=20.0)
    release: FloatProperty(name="Release (s)", default=0.8, min=0.1, max=10.0)
    leader: EnumProperty(name="Leader", items=[("A", "A", "Head A covers most of the distance"),
                                               ("B", "B", "Head B covers most of the distance")])
    tilt_side: EnumProperty(name="Tilt", items=[("RIGHT", "Own right", "Each head rolls toward its own right"),
                                                ("LEFT", "Own left", "Each head rolls toward its own left")])
    auto_tilt: BoolProperty(name="Auto tilt", default=True, description="Search the roll so that the noses clear")
    tilt_degrees: FloatProperty(name="Tilt (deg)", default=25.0, min=0.0, max=60.0)
    eyes: FloatProperty(name="Eyes", default=1.0, min=0.0, max=1.0, description="How far the eyes close")
    pucker: FloatProperty(name="Pucker", default=0.6, min=0.0, max=1.0, description="How far the lips pucker")
    anticipation: BoolProperty(name="Anticipation", default=False, description="The leader draws back a little first")
    existing_animation: EnumProperty(name="Existing Animation", items=_EXISTING, default="KEEP",
                                     description="What happens to an action that already keys the heads' transforms "
                                                 "or mouth shape keys")
    status: StringProperty(name="Status")
    worst_frame: IntProperty(name="Worst frame", default=-1)
    report_json: StringProperty(name="Report")


CLASSES = (OrisMappingRow, OrisChannelRow, OrisLipSyncSettings, OrisContactSettings)


def register_props() -> None:
    bpy.types.Scene.oris_lipsync = PointerProperty(type=OrisLipSyncSettings)
    bpy.types.Scene.oris_contact = PointerProperty(type=OrisContactSettings)


def unregister_props() -> None:
    del bpy.types.Scene.oris_contact
    del bpy.types.Scene.oris_lipsync
