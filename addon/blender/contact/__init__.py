"""Contact animation in Blender: measure two head rigs, plan (core.contact), key, validate.

    report = run_contact(scene, HeadSpec(ob_a), HeadSpec(ob_b), ContactSettings(contact_frame=48))

A head is a mesh object, an empty or parent holding face meshes, or an armature's head bone.
Everything is measured on the evaluated meshes in world space. The keys go into one Action
placed as "Oris Contact" NLA strips; after keying, every frame is measured again from the
evaluated meshes (not from the plan), and a plan that fails is replanned with more roll or a
different pitch, or removed with a clear message. Nothing is left half-written.

One module a stage, in the order they run:
    heads       what the user picked -> controller, face meshes, shape keys
    geometry    evaluated world-space meshes, pucker and blink offsets, lip point and facing
    collider    time of impact between the turned heads, for the planner
    keying      the plan as one Action on "Oris Contact" NLA strips
    validation  every keyed frame measured on the evaluated meshes
    state       the file as it was, restored when no plan passes
    run         run_contact: the stages above, replanning on failure
"""

from .heads import HeadSpec, PickError
from .keying import STRIP_NAME, TRACK_NAME
from .run import ContactFailed, ContactReport, Progress, check_frame_span, frame_span, run_contact

__all__ = ["STRIP_NAME", "TRACK_NAME", "ContactFailed", "ContactReport", "HeadSpec", "PickError", "Progress",
           "check_frame_span", "frame_span", "run_contact"]
