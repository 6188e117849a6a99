"""Blender UI: each module exports CLASSES; registered in order."""

from __future__ import annotations

import bpy

from . import operators, panels, preferences, properties

_MODULES = (properties, preferences, operators, panels)


def register() -> None:
    for module in _MODULES:
        for cls in module.CLASSES:
            bpy.utils.register_class(cls)
    properties.register_props()


def unregister() -> None:
    from ..blender import session

    session.shutdown()
    properties.unregister_props()
    for module in reversed(_MODULES):
        for cls in reversed(module.CLASSES):
            bpy.utils.unregister_class(cls)
