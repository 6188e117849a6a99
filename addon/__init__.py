"""Oris: facial animation for Blender.

Importing this package never imports bpy, so the engine and the command line run in a
plain Python (`python -m oris ...`) and inside the worker process.
"""

__version__ = "0.1.0"
