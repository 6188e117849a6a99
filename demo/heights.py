"""A kiss between characters of different heights, as a picture: B stands 15 cm lower; the taller looks down, the
shorter up, and their lips meet where both stand (README, "Characters of different heights"). The skin limit is
raised to 25% for it: on these automatically weighted bodies the necks stretch the skin 22% (10% is the default).

    python demo/heights.py     # writes docs/contact_heights.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    import bpy

    from demo.characters import facing_pair
    from demo.run import DOCS, _world, contact_axes, render_strip, where_lips_meet
    from oris.blender.contact import HeadSpec, run_contact
    from oris.blender.files import blender_quiet, hide_exit_report
    from oris.core.contact import ContactSettings

    with blender_quiet():
        rig_a, body_a, rig_b, body_b = facing_pair(gap=0.5)
        rig_b.location.z -= 0.15
        bpy.context.view_layer.update()
        scene = bpy.context.scene
        report = run_contact(scene, HeadSpec(rig_a), HeadSpec(rig_b),
                             ContactSettings(contact_frame=48, stretch_limit=0.25))
        _world(scene)
        _axis, side = contact_axes(report)
        _verts, touch = where_lips_meet(scene, (body_a, body_b), 48)
        centre = np.array([touch[0], touch[1], 0.0])
        whole = centre + side * 3.4 + np.array([0.0, 0.0, 0.1])
        shots = ((int(report.plan["start_frame"]), whole, centre, 50), (48, whole, centre, 50),
                 (48, touch + side * 0.9 + np.array([0.0, 0.0, 0.02]), touch, 60))
        render_strip(scene, shots, DOCS / "contact_heights.png")
    s = report.summary
    print(f"B 15 cm lower: incline {report.plan['incline_degrees']:.1f} deg, roll {report.plan['roll_degrees']:g} deg, "
          f"worst stretch {100 * s['max_edge_stretch']:.1f}%, lean {s['max_lean_degrees']:.1f} deg; "
          "wrote docs/contact_heights.png")
    hide_exit_report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
