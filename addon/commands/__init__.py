"""The subcommands of `oris` (and `blender -b -c oris`), a module each, parsed by cli.py:
visemes (one file, several, or a --batch manifest), lipsync and contact (need bpy), summary and rows."""
