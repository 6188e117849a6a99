"""The Oris demo: speech to visemes, a head speaking the clip, and two full characters kissing.

    python demo/run.py            # writes demo_visemes.json, demo.blend, demo_kiss.blend, docs/demo_*.png

The first part needs only the engine; the Blender parts need the bpy module (pip install '.[blender]').
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
AUDIO, TEXT = REPO / "demo" / "speech.flac", REPO / "demo" / "speech.txt"
DOCS = REPO / "docs"
# 6 mouth classes for the timeline under the contact sheet (closed, labiodental, open, rounded, rest, other)
CLASS_COLOURS = {"PP": (200, 40, 40), "FF": (230, 150, 30), "aa": (40, 120, 220), "oh": (120, 60, 200), "ou": (120, 60, 200),
                 "sil": (225, 225, 225)}
OTHER = (90, 170, 110)


def engine_demo() -> int:
    from oris.cli import main

    return main(["visemes", str(AUDIO), "--text-file", str(TEXT), "-o", "demo_visemes.json"])


def _world(scene) -> None:
    import bpy

    scene.world = scene.world or bpy.data.worlds.new("World")
    scene.world.color = (0.93, 0.93, 0.95)
    scene.render.engine = "BLENDER_WORKBENCH"
    shading = scene.display.shading
    shading.light, shading.color_type = "STUDIO", "SINGLE"
    shading.single_color = (0.8, 0.64, 0.55)
    shading.show_cavity = True


def render(scene, eye, target, lens: float, size: tuple[int, int], path: Path) -> np.ndarray:
    """One Workbench still from eye toward target, returned as RGB uint8 (top row first)."""
    import bpy
    from mathutils import Vector

    cam = scene.camera
    if cam is None:
        cam = bpy.data.objects.new("DemoCamera", bpy.data.cameras.new("DemoCamera"))
        scene.collection.objects.link(cam)
        scene.camera = cam
    cam.location = Vector(eye)
    cam.rotation_euler = (Vector(target) - Vector(eye)).to_track_quat("-Z", "Y").to_euler()
    cam.data.lens = lens
    cam.data.clip_start = 0.001 * (Vector(target) - Vector(eye)).length
    scene.render.resolution_x, scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    img = bpy.data.images.load(str(path))
    px = np.array(img.pixels[:], np.float32).reshape(size[1], size[0], 4)[::-1, :, :3]
    bpy.data.images.remove(img)
    path.unlink()
    return (np.clip(px, 0, 1) ** (1 / 2.2) * 255).astype(np.uint8) if px.max() <= 1.0 else px.astype(np.uint8)


def save_png(pixels: np.ndarray, path: Path) -> None:
    import bpy

    h, w, _ = pixels.shape
    img = bpy.data.images.new(path.stem, w, h, alpha=False)
    rgba = np.concatenate([pixels[::-1].astype(np.float32) / 255.0, np.ones((h, w, 1), np.float32)], axis=2)
    img.pixels.foreach_set(rgba.ravel())
    img.filepath_raw, img.file_format = str(path), "PNG"
    img.save()
    bpy.data.images.remove(img)


def lipsync_demo() -> str:
    import bpy

    from oris.blender import lipsync
    from oris.blender.contact.geometry import measure_head
    from oris.blender.contact.heads import HeadSpec, resolve_head
    from oris.core.align import Transcript
    from oris.core.contact import ContactSettings
    from oris.engine.client import WorkerClient
    from oris.engine.model import find_model

    bpy.ops.wm.open_mainfile(filepath=str(REPO / "demo" / "heads" / "mh_talkinghead_head.blend"), load_ui=False)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 24, 1.0
    head = next(o for o in scene.objects if o.type == "MESH")
    with WorkerClient(device="auto") as worker:
        report = lipsync.run(scene, [head], str(AUDIO), worker, start_frame=1, extend_range=True,
                             transcript=Transcript(TEXT.read_text(encoding="utf-8")), card=find_model().card)
    said = (f"lip sync: {report.keys_written} keys ({report.keys_per_second:.0f}/s) on {', '.join(report.targets)}, "
            f"frames {report.start_frame}-{report.end_frame:.0f}")
    bpy.ops.wm.save_as_mainfile(filepath=str(REPO / "demo.blend"))

    unpuckered = ContactSettings(pucker_strength=0.0)  # where the camera looks: the face at rest
    face = measure_head(resolve_head(HeadSpec(head), "head"), bpy.context.evaluated_depsgraph_get(), unpuckered)[1]
    lip = face.lip
    eye, target = lip + face.forward * 0.32 + face.up * 0.02 - face.right * 0.08, lip + face.up * 0.01
    _world(scene)
    # frames to show: the middle of the first closures and open vowels after the first second
    import json

    doc = json.loads((REPO / "demo_visemes.json").read_text()) if (REPO / "demo_visemes.json").exists() else {"cues": []}
    wanted = []
    for name in ("PP", "aa", "ou", "FF", "E", "PP"):
        cue = next((c for c in doc["cues"] if c["viseme"] == name and c["start"] > 1.0
                    and not any(abs((c["start"] + c["end"]) / 2 - w[1]) < 0.5 for w in wanted)), None)
        if cue:
            wanted.append((name, (cue["start"] + cue["end"]) / 2))
    wanted.sort(key=lambda w: w[1])
    tiles = []
    for _name, t in wanted:
        scene.frame_set(1 + round(t * 24))
        tiles.append(render(scene, eye, target, 135, (240, 200), DOCS / "_tile.png"))
    row = np.concatenate(tiles, axis=1)
    # the timeline: the clip's cues as coloured blocks, a tick under each frame shown (left to right)
    width, strip = row.shape[1], np.full((36, row.shape[1], 3), 255, np.uint8)
    duration = doc.get("duration", 1.0) or 1.0
    for c in doc["cues"]:
        x0, x1 = int(c["start"] / duration * width), max(int(c["end"] / duration * width), int(c["start"] / duration * width) + 1)
        strip[4:24, x0:x1] = CLASS_COLOURS.get(c["viseme"], OTHER)
    for _name, t in wanted:
        x = int(t / duration * width)
        strip[24:36, max(0, x - 1):x + 2] = 0
    save_png(np.concatenate([row, strip], axis=0), DOCS / "demo_lipsync.png")
    return said


def kiss_demo() -> str:
    import bpy

    from demo.characters import facing_pair
    from oris.blender.contact import HeadSpec, run_contact
    from oris.core.contact import ContactSettings

    rig_a, body_a, rig_b, body_b = facing_pair(gap=0.5)  # two full characters, half a metre between their lips
    scene = bpy.context.scene
    report = run_contact(scene, HeadSpec(rig_a), HeadSpec(rig_b), ContactSettings(contact_frame=48))
    said = f"contact: {report.brief()}"
    (REPO / "demo_kiss_report.json").write_text(report.to_json(), encoding="utf-8")
    scene.frame_start, scene.frame_end = int(report.plan["start_frame"]), int(report.plan["end_frame"])
    bpy.ops.wm.save_as_mainfile(filepath=str(REPO / "demo_kiss.blend"))
    _world(scene)
    axis, side = contact_axes(report)
    verts, touch = where_lips_meet(scene, (body_a, body_b), 48)
    pts = np.concatenate(verts)
    centre = (pts.min(axis=0) + pts.max(axis=0)) / 2
    start = int(report.plan["start_frame"])
    whole = centre + side * 3.4 + np.array([0.0, 0.0, 0.1])  # the two bodies from the side
    three_quarter = touch - 0.5 * (np.cos(0.7) * side + np.sin(0.7) * axis) + np.array([0.0, 0.0, 0.08])
    shots = ((start, whole, centre, 50), (40, whole, centre, 50), (48, whole, centre, 50),
             (48, touch + side * 0.9 + np.array([0.0, 0.0, 0.05]), touch, 60), (48, three_quarter, touch, 85))
    render_strip(scene, shots, DOCS / "demo_kiss.png")
    return said


def contact_axes(report) -> tuple[np.ndarray, np.ndarray]:
    """The contact's approach axis (A toward B) and the level side axis a camera beside the couple looks along."""
    axis = np.array(report.plan["axis"])
    side = np.cross(axis, [0.0, 0.0, 1.0])
    return axis, side / np.linalg.norm(side)


def where_lips_meet(scene, bodies, frame: int) -> tuple[list[np.ndarray], np.ndarray]:
    """The two bodies' evaluated vertices (world) on a frame, and the point where they come closest: the lips."""
    import bpy
    from scipy.spatial import cKDTree

    scene.frame_set(frame)
    dg = bpy.context.evaluated_depsgraph_get()
    verts = [np.array([ob.evaluated_get(dg).matrix_world @ v.co for v in ob.evaluated_get(dg).data.vertices])
             for ob in bodies]
    dist, nearest = cKDTree(verts[1]).query(verts[0])
    return verts, (verts[0][np.argmin(dist)] + verts[1][nearest[np.argmin(dist)]]) / 2


def render_strip(scene, shots, path: Path) -> None:
    """One 240x340 tile per (frame, eye, target, lens), side by side, saved as a PNG."""
    tiles = []
    for frame, eye, target, lens in shots:
        scene.frame_set(frame)
        tiles.append(render(scene, eye, target, lens, (240, 340), DOCS / "_tile.png"))
    save_png(np.concatenate(tiles, axis=1), path)


def main() -> int:
    code = engine_demo()
    try:
        import bpy  # noqa: F401
    except ImportError:
        print("bpy is not installed: skipped the Blender parts (pip install '.[blender]' on Python 3.11 or 3.13)")
        return code
    from oris.blender.files import blender_quiet, hide_exit_report

    with blender_quiet():  # Blender's own notes (region warnings, render timings) are not the demo's story
        said = [lipsync_demo(), kiss_demo()]
    print("\n".join(said))
    print("wrote demo.blend, demo_kiss.blend, docs/demo_lipsync.png and docs/demo_kiss.png")
    hide_exit_report()
    return code


if __name__ == "__main__":
    sys.exit(main())
