import sys

from .cli import main

code = main()
if "bpy" in sys.modules:  # lipsync and contact: Blender's exit report on unfreed memory is not for users
    from .blender.files import hide_exit_report

    hide_exit_report()
sys.exit(code)
