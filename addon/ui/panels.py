"""The Oris sidebar tab in the 3D viewport."""

from __future__ import annotations

import bpy


class ORIS_PT_lipsync(bpy.types.Panel):
    bl_label = "Lip Sync"
    bl_idname = "ORIS_PT_lipsync"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Oris"

    def draw(self, context: bpy.types.Context) -> None:
        s = context.scene.oris_lipsync
        layout = self.layout
        layout.prop(s, "audio_path")
        layout.prop(s, "transcript")
        box = layout.box()
        box.label(text="Targets: " + (", ".join(ob.name for ob in context.selected_objects if ob.type == "MESH") or "select the face mesh(es)"))
        row = box.row(align=True)
        row.prop(s, "preset")
        row.operator("oris.detect_rig", text="", icon="VIEWZOOM")
        if s.preset == "custom":
            box.prop(s, "custom_preset_path")
        if s.detection:
            box.label(text=s.detection, icon="INFO")
        col = layout.column(align=True)
        col.prop(s, "intensity")
        col.prop(s, "lead_ms")
        col.prop(s, "stepped")
        col.prop(s, "use_current_frame")
        if not s.use_current_frame:
            col.prop(s, "start_frame")
        col.prop(s, "extend_range")
        layout.operator("oris.lipsync", icon="SPEAKER")
        if s.status:
            layout.prop(s, "progress", text=s.status, slider=True)


CLASSES = (ORIS_PT_lipsync,)
