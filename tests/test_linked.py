"""Linked characters (real bpy, a real library file, the real worker): Oris makes the library override itself,
writes the keys into the shot, never writes the library, and the shot survives a reload and a library change."""

import hashlib
import inspect

import pytest

bpy = pytest.importorskip("bpy")

from oris.blender import lipsync as bl  # noqa: E402
from oris.blender.overrides import CLEAR_OVERRIDE_MENU, MAKE_OVERRIDE_MENU  # noqa: E402
from oris.blender.shapekeys import TRACK_NAME  # noqa: E402
from oris.engine.model import find_model  # noqa: E402

from .conftest import DATA, REPO  # noqa: E402

HEAD = REPO / "demo" / "heads" / "mh_talkinghead_head.blend"
FACE = "MakeHuman_head"


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def library(tmp_path):
    """lib.blend: a character collection CHAR, its face mesh parented to an armature, as riggers publish them."""
    bpy.ops.wm.open_mainfile(filepath=str(HEAD))
    face = bpy.data.objects[FACE]
    char = bpy.data.collections.new("CHAR")
    bpy.context.scene.collection.children.link(char)
    for collection in list(face.users_collection):
        collection.objects.unlink(face)
    char.objects.link(face)
    rig = bpy.data.objects.new("CHAR_rig", bpy.data.armatures.new("CHAR_rig"))
    char.objects.link(rig)
    face.parent = rig
    path = tmp_path / "lib.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    return path


def link_instance(library):
    """File > Link of the collection: an instance empty in a new shot."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    with bpy.data.libraries.load(str(library), link=True) as (_src, dst):
        dst.collections = ["CHAR"]
    instance = bpy.data.objects.new("CHAR", None)
    instance.instance_type, instance.instance_collection = "COLLECTION", dst.collections[0]
    bpy.context.scene.collection.objects.link(instance)
    return instance


def add_shape_key_to(library):
    bpy.ops.wm.open_mainfile(filepath=str(library))
    bpy.data.objects[FACE].shape_key_add(name="rigger_added", from_mix=False)
    bpy.ops.wm.save_mainfile()


def closes_and_opens(scene, key, start, end):
    values = []
    for f in range(start, end):
        scene.frame_set(f)
        values.append((key.key_blocks["viseme_PP"].value, key.key_blocks["viseme_aa"].value))
    return max(v[0] for v in values), max(v[1] for v in values)


def check_shot(shot, library, lib_sha):
    """The saved shot: keys play after a reload, and after the rigger adds a shape key to the library."""
    for reload in ("saved", "library changed"):
        if reload == "library changed":
            add_shape_key_to(library)
        bpy.ops.wm.open_mainfile(filepath=str(shot))
        face = bpy.data.objects[FACE]
        key = face.data.shape_keys
        assert face.override_library is not None and face.data.library is None, reload
        assert [t.name for t in key.animation_data.nla_tracks] == [TRACK_NAME], reload
        closed, opened = closes_and_opens(bpy.context.scene, key, 1, 80)
        assert closed > 0.9 and opened > 0.3, (reload, closed, opened)
        if reload == "library changed":
            assert "rigger_added" in key.key_blocks
        else:
            assert digest(library) == lib_sha, "the library file is never written"


def test_a_linked_instance_is_made_an_editable_override_and_keyed(library, tmp_path, worker):
    lib_sha = digest(library)
    instance = link_instance(library)
    scene = bpy.context.scene
    report = bl.run(scene, [instance], str(DATA / "bilabials_slt.flac"), worker, start_frame=1,
                    card=find_model().card, recognize=False)
    assert any("made its face an editable library override" in n and "lib.blend" in n for n in report.notes), report.notes
    assert "CHAR" not in bpy.data.objects or bpy.data.objects["CHAR"].type != "EMPTY", "the override took its place"
    shot = tmp_path / "shot.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(shot))
    check_shot(shot, library, lib_sha)


def test_a_character_overridden_by_the_artist_is_made_editable_and_keyed(library, tmp_path, worker):
    """Object > Library Override > Make: the objects are system overrides and the face's mesh is still linked."""
    lib_sha = digest(library)
    instance = link_instance(library)
    bpy.context.view_layer.objects.active = instance
    instance.select_set(True)
    assert bpy.ops.object.make_override_library() == {"FINISHED"}
    face = bpy.data.objects[FACE]
    assert face.override_library is not None and face.data.library is not None
    scene = bpy.context.scene
    report = bl.run(scene, [face], str(DATA / "bilabials_slt.flac"), worker, start_frame=1, card=find_model().card,
                    recognize=False)
    assert any("editable library override" in n for n in report.notes), report.notes
    shot = tmp_path / "shot.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(shot))
    check_shot(shot, library, lib_sha)


def test_a_cancelled_or_failed_run_on_a_linked_character_makes_no_override(library, worker):
    instance = link_instance(library)
    job = bl.prepare(bpy.context.scene, [instance], str(DATA / "bilabials_slt.flac"), card=find_model().card,
                     recognize=False)
    job.analyze(worker)  # analysed, never applied (as when the artist cancels): nothing was made
    assert not any(ob.override_library for ob in bpy.data.objects)
    assert bpy.data.objects["CHAR"].type == "EMPTY"


def menu_path_exists(path: str) -> bool:
    """Whether a hint's 'Object > Library Override > Make' is a menu path in this Blender: each step a submenu
    the previous menu draws (by its label), the last an item it draws (by its text)."""
    import bl_ui.space_view3d as view3d

    steps = [s.strip() for s in path.split(">")]
    menus = {"Object": view3d.VIEW3D_MT_object}
    menu = menus.get(steps[0])
    for step in steps[1:-1]:
        source = inspect.getsource(menu)
        drawn = [getattr(bpy.types, n) for n in dir(bpy.types) if "_MT_" in n and f'"{n}"' in source]
        menu = next((m for m in drawn if getattr(m, "bl_label", "") == step), None)
        if menu is None:
            return False
    return menu is not None and f'text="{steps[-1]}"' in inspect.getsource(menu)


def test_the_override_hint_names_a_menu_that_exists():
    for hint in (MAKE_OVERRIDE_MENU, CLEAR_OVERRIDE_MENU):
        assert menu_path_exists(hint), hint
    assert not menu_path_exists("Object > Library Override > Make Editable")  # the hint that did not exist
