"""Add-on preferences: the worker's Python and device, its status, a restart button."""

from __future__ import annotations

import bpy
from bpy.props import EnumProperty, StringProperty

from ..blender import session


def addon_package() -> str:
    return __package__.rsplit(".", 1)[0] if __package__ else "oris"


class OrisPreferences(bpy.types.AddonPreferences):
    bl_idname = addon_package()

    worker_python: StringProperty(
        name="Worker Python", subtype="FILE_PATH",
        description="Python that runs the model (empty: Blender's own). Point it at an environment "
                    "with onnxruntime-gpu to use an NVIDIA GPU")
    device: EnumProperty(
        name="Device", default="auto",
        items=[("auto", "Auto", "The GPU when onnxruntime has one, else the CPU"),
               ("cpu", "CPU", "Always the CPU"), ("gpu", "GPU", "CUDA, DirectML or CoreML; an error if none")])

    def draw(self, context: bpy.types.Context) -> None:
        col = self.layout.column()
        col.prop(self, "worker_python")
        col.prop(self, "device")
        row = col.row()
        row.label(text=f"Worker: {session.status()}")
        row.operator("oris.worker_restart", icon="FILE_REFRESH")


def preferences(context: bpy.types.Context) -> OrisPreferences | None:
    addon = context.preferences.addons.get(addon_package())
    return addon.preferences if addon else None  # type: ignore[return-value]


class ORIS_OT_worker_restart(bpy.types.Operator):
    bl_idname = "oris.worker_restart"
    bl_label = "Restart Worker"
    bl_description = "Stop the inference worker; the next lip sync starts a fresh one with the current preferences"

    def execute(self, context: bpy.types.Context) -> set[str]:
        session.shutdown()
        self.report({"INFO"}, "Oris worker stopped; it restarts on the next lip sync")
        return {"FINISHED"}


CLASSES = (OrisPreferences, ORIS_OT_worker_restart)
