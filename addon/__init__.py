"""Oris: facial animation for Blender.

Importing this package never imports bpy, so the engine and the command line run in a
plain Python (`python -m oris ...`) and inside the worker process; Blender calls register().
"""

__version__ = "0.1.0"


_cli_handle = None


def _blender_cli(argv: list[str]) -> int:
    """`blender -b -c oris ...`: the same commands as `python -m oris ...`."""
    from .cli import main

    return main(argv)


def register() -> None:
    import bpy

    from . import ui

    global _cli_handle
    ui.register()
    if hasattr(bpy.utils, "register_cli_command"):
        _cli_handle = bpy.utils.register_cli_command("oris", _blender_cli)  # type: ignore[func-returns-value]  # returns a handle


def unregister() -> None:
    import bpy

    from . import ui

    global _cli_handle
    if _cli_handle is not None:
        bpy.utils.unregister_cli_command(_cli_handle)
        _cli_handle = None
    ui.unregister()
