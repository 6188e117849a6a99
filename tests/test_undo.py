"""Undo restores the state before an Oris operator ran (memfile undo on the real bpy).

Background bpy has a window manager after loading factory settings with its default screen, so
undo steps can be pushed and undone; an operator called from Python does not push its own step
there, so the test pushes the step the UI pushes before an UNDO operator runs."""

import pytest

bpy = pytest.importorskip("bpy")

from demo.scenes import MH_HEAD, load_head, make_pair  # noqa: E402
from oris.ui import operators  # noqa: E402

from .conftest import DATA  # noqa: E402
from .test_cli import BILABIAL_TEXT  # noqa: E402


@pytest.fixture()
def registered():
    import oris

    bpy.ops.wm.read_factory_settings(use_empty=False)
    for ob in list(bpy.data.objects):
        bpy.data.objects.remove(ob)
    oris.register()
    yield
    oris.unregister()


def _undo_to_before(operator, cls) -> None:
    assert "UNDO" in cls.bl_options  # so the UI pushes an undo step before it runs
    bpy.ops.ed.undo_push(message="before")
    bpy.ops.ed.undo_push(message="ready")
    assert bpy.ops.ed.undo.poll()
    assert operator() == {"FINISHED"}
    assert [a for a in bpy.data.actions if a.name.startswith("Oris")]  # it did write
    bpy.ops.ed.undo()


def test_undo_removes_a_lip_sync(registered):
    ob = load_head(MH_HEAD, "Face")
    ob.select_set(True)
    bpy.context.view_layer.objects.active = ob
    s = bpy.context.scene.oris_lipsync
    s.audio_path, s.transcript, s.transcript_source = str(DATA / "bilabials_slt.flac"), BILABIAL_TEXT, "TEXT"
    _undo_to_before(bpy.ops.oris.lipsync, operators.ORIS_OT_lipsync)
    face = bpy.data.objects["Face"]
    assert face.data.shape_keys.animation_data is None
    assert not [a for a in bpy.data.actions if a.name.startswith("Oris")]
    seq = bpy.context.scene.sequence_editor
    assert seq is None or not [st for st in seq.strips if st.type == "SOUND"]


def test_undo_removes_a_contact_and_puts_the_heads_back(registered):
    pair = make_pair()
    s = bpy.context.scene.oris_contact
    s.head_a, s.head_b = pair.a, pair.b
    before = [tuple(bpy.data.objects[n].location) for n in ("HeadA", "HeadB")]
    before_actions = len(bpy.data.actions)
    _undo_to_before(bpy.ops.oris.contact, operators.ORIS_OT_contact)
    assert len(bpy.data.actions) == before_actions
    for name, loc in zip(("HeadA", "HeadB"), before):
        ob = bpy.data.objects[name]
        assert ob.animation_data is None or not ob.animation_data.nla_tracks
        assert tuple(ob.location) == pytest.approx(loc)
    assert not [a for a in bpy.data.actions if a.name.startswith("Oris")]
