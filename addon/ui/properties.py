"""Scene settings for the Oris panel."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from ..core.rigs import PRESETS


def _preset_items(_self: object, _context: object) -> list[tuple[str, str, str]]:
    return [("auto", "Auto", "Detect the convention from the shape-key names")] + [
        (p.name, p.label, p.label) for p in PRESETS.values()] + [("custom", "Custom (JSON)", "A mapping saved as JSON")]


class OrisLipSyncSettings(bpy.types.PropertyGroup):
    audio_path: StringProperty(name="Audio", subtype="FILE_PATH", description="Speech: wav, flac, ogg, mp3")
    transcript: StringProperty(name="Transcript", description="Optional: the words spoken, for transcript-guided timing")
    preset: EnumProperty(name="Preset", items=_preset_items)
    custom_preset_path: StringProperty(name="Custom preset", subtype="FILE_PATH")
    intensity: FloatProperty(name="Intensity", default=1.0, min=0.0, max=2.0, description="Scale of the open shapes")
    stepped: BoolProperty(name="Stepped", default=False, description="One held shape at a time (2D / cut-out rigs)")
    lead_ms: FloatProperty(name="Lead (ms)", default=60.0, min=-500.0, max=500.0, description="How far the mouth leads the sound")
    use_current_frame: BoolProperty(name="Start at current frame", default=True)
    start_frame: IntProperty(name="Start frame", default=1)
    extend_range: BoolProperty(name="Fit scene range", default=False, description="Grow the scene's frame range to cover the clip")
    detection: StringProperty(name="Detection")
    status: StringProperty(name="Status")
    progress: FloatProperty(name="Progress", min=0.0, max=1.0, subtype="FACTOR")


CLASSES = (OrisLipSyncSettings,)


def register_props() -> None:
    bpy.types.Scene.oris_lipsync = PointerProperty(type=OrisLipSyncSettings)


def unregister_props() -> None:
    del bpy.types.Scene.oris_lipsync
