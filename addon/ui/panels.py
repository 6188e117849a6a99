"""The Oris sidebar tab in the 3D viewport."""

from __future__ import annotations

from typing import Any

import bpy


class ORIS_UL_mapping(bpy.types.UIList):
    """Rows of the custom mapping: viseme (or blink/pucker), the rig's shape key, weight."""

    keys: Any = None  # the selected rig's Key datablock, for picking key names

    def draw_item(self, context: bpy.types.Context, layout: bpy.types.UILayout, data: Any, item: Any,
                  icon: int, active_data: Any, active_propname: str, index: int = 0, flt_flag: int = 0) -> None:
        row = layout.row(align=True)
        row.prop(item, "target", text="")
        if self.keys is not None:
            row.prop_search(item, "key", self.keys, "key_blocks", text="")
        else:
            row.prop(item, "key", text="")
        row.prop(item, "weight", text="")


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
        layout.prop(s, "transcript_source")
        layout.prop(s, "language")
        field = {"TEXT": "transcript", "TEXT_BLOCK": "transcript_block", "FILE": "transcript_file"}.get(s.transcript_source)
        if field:
            layout.prop(s, field)
        if s.recognized_text is not None:
            row = layout.row(align=True)
            row.label(text=f"Heard: {s.recognized_text.name}", icon="TEXT")
            row.operator("oris.use_words", icon="FILE_REFRESH")
        box = layout.box()
        box.label(text="Targets: " + (", ".join(ob.name for ob in context.selected_objects if ob.type == "MESH") or "select the face mesh(es)"))
        row = box.row(align=True)
        row.prop(s, "preset")
        row.operator("oris.detect_rig", text="", icon="VIEWZOOM")
        if s.preset == "custom":
            keys = next((ob.data.shape_keys for ob in context.selected_objects
                         if ob.type == "MESH" and ob.data.shape_keys), None)
            row = box.row()
            row.template_list("ORIS_UL_mapping", "", s, "mapping", s, "mapping_index", rows=6)
            col = row.column(align=True)
            col.operator("oris.mapping_row", text="", icon="ADD").action = "ADD"
            col.operator("oris.mapping_row", text="", icon="REMOVE").action = "REMOVE"
            ORIS_UL_mapping.keys = keys
            row = box.row(align=True)
            row.operator("oris.mapping_from_detected", icon="VIEWZOOM")
            row.operator("oris.mapping_load", text="", icon="FILEBROWSER")
            row.operator("oris.mapping_save", text="", icon="FILE_TICK")
        if s.detection:
            box.label(text=s.detection, icon="INFO")
        col = layout.column(align=True)
        col.prop(s, "intensity")
        row = col.row(align=True)
        row.prop(s, "jaw")
        row.prop(s, "lips")
        col.prop(s, "lead_ms")
        col.prop(s, "stepped")
        col.prop(s, "use_current_frame")
        if not s.use_current_frame:
            col.prop(s, "start_frame")
        col.prop(s, "extend_range")
        col.prop(s, "jaw_degrees")
        col.prop(s, "add_sound")
        col.prop(s, "keep_overlapping")
        col.prop(s, "existing_animation")
        layout.operator("oris.lipsync", icon="SPEAKER")
        box = layout.box()
        box.label(text="Scene dialogue: strips named '<object>:...', or by channel", icon="SEQUENCE")
        for i, row in enumerate(s.channels):
            line = box.row(align=True)
            line.prop(row, "channel", text="")
            line.prop(row, "character", text="")
            line.operator("oris.channel_row", text="", icon="REMOVE").index = i
        line = box.row(align=True)
        line.operator("oris.channel_row", text="Map a Channel", icon="ADD").index = -1
        line.operator("oris.lipsync_dialogue", icon="SEQ_SEQUENCER")
        layout.operator("oris.bake", icon="EXPORT")
        if s.status:
            layout.prop(s, "progress", text=s.status, slider=True)


class ORIS_PT_contact(bpy.types.Panel):
    bl_label = "Contact"
    bl_idname = "ORIS_PT_contact"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Oris"

    def draw(self, context: bpy.types.Context) -> None:
        s = context.scene.oris_contact
        layout = self.layout
        for side in ("a", "b"):
            box = layout.box()
            box.prop(s, f"head_{side}")
            head = getattr(s, f"head_{side}")
            if head is not None and head.type == "ARMATURE":
                box.prop_search(s, f"bone_{side}", head.data, "bones")
            row = box.row(align=True)
            row.prop(s, f"lips_{side}")
            row.operator("oris.contact_lip_from_selection", text="", icon="VERTEXSEL").side = side.upper()
            row.prop(s, f"facing_{side}", text="")
            if head is not None and head.type == "MESH":
                box.prop_search(s, f"lip_group_{side}", head, "vertex_groups")
        col = layout.column(align=True)
        col.prop(s, "contact_frame")
        col.prop(s, "approach")
        col.prop(s, "hold")
        col.prop(s, "release")
        row = layout.row(align=True)
        row.prop(s, "leader", expand=True)
        row = layout.row(align=True)
        row.prop(s, "tilt_side", text="")
        row.prop(s, "auto_tilt", toggle=True)
        if not s.auto_tilt:
            layout.prop(s, "tilt_degrees")
        col = layout.column(align=True)
        col.prop(s, "eyes", slider=True)
        col.prop(s, "pucker", slider=True)
        col.prop(s, "anticipation")
        layout.prop(s, "existing_animation")
        layout.operator("oris.contact", icon="MOD_PHYSICS")
        if s.status:
            for line in s.status.split("\n"):
                layout.label(text=line)
        if s.worst_frame >= 0:
            layout.operator("oris.contact_worst_frame", icon="TIME")


CLASSES = (ORIS_UL_mapping, ORIS_PT_lipsync, ORIS_PT_contact)
