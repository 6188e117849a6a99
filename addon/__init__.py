"""Oris: facial animation for Blender.

Importing this package never imports bpy, so the engine and the command line run in a
plain Python (`python -m oris ...`) and inside the worker process; Blender calls register().
"""

__version__ = "0.1.0"


def register() -> None:
    from . import ui

    ui.register()


def unregister() -> None:
    from . import ui

    ui.unregister()
