"""Linked characters made editable the way a studio keeps them: a library override of the character's hierarchy,
with the face mesh and its shape keys editable, so Oris's keys are saved in the shot while the rigger's library
file is never written, and a later change there (a new shape key) still reaches the shot on reload.

Two ways characters arrive, both handled: File > Link of a collection (an instance empty in the shot) and a
library override made by the artist (its objects system overrides, the mesh still linked)."""

from __future__ import annotations

from typing import Any

import bpy

from .actions import EditError

# Where an artist makes an override by hand, in Blender 4.5 to 5.2 (tests look these up in Blender's own menus)
MAKE_OVERRIDE_MENU = "Object > Library Override > Make"
CLEAR_OVERRIDE_MENU = "Object > Library Override > Clear"


def _linked(idb: Any) -> bool:
    return idb is not None and idb.library is not None


def _system_override(idb: Any) -> bool:
    override = getattr(idb, "override_library", None) if idb is not None else None
    return override is not None and override.is_system_override


def instanced_meshes(ob: Any) -> list[Any]:
    """The mesh objects a collection instance (an empty from File > Link) shows; [] for any other object."""
    if ob is None or ob.type != "EMPTY" or ob.instance_type != "COLLECTION" or ob.instance_collection is None:
        return []
    return [o for o in ob.instance_collection.all_objects if o.type == "MESH"]


def needs_override(ob: Any) -> bool:
    """Whether Oris must make an override before it can key this object's shape keys."""
    if bool(instanced_meshes(ob)) and _linked(ob.instance_collection):
        return True
    data = ob.data if ob.type == "MESH" else None
    return _linked(ob) or _system_override(ob) or _linked(data) or _system_override(data)


def _hierarchy_override(ob: Any, scene: Any, view_layer: Any) -> list[Any]:
    """A library override of what `ob` brings in (an instance's collection, or a linked object), as Blender's
    Object > Library Override > Make does; returns the override's mesh objects."""
    try:
        if instanced_meshes(ob):
            collection = ob.instance_collection
            root = collection.override_hierarchy_create(scene, view_layer, reference=ob)
            bpy.data.objects.remove(ob)  # the override takes the instance's place, as Blender's own operator does
            return [o for o in root.all_objects if o.type == "MESH"]
        return [ob.override_hierarchy_create(scene, view_layer)]
    except (RuntimeError, ReferenceError) as exc:
        raise EditError(f"{ob.name}: Oris could not make a library override of it ({exc}); make one yourself "
                        f"({MAKE_OVERRIDE_MENU}, or bpy.ops.object.make_override_library() in a script) "
                        "and run Oris again") from None


def _editable(ob: Any) -> None:
    """The object's override made editable, and its mesh's, the mesh overridden first when it is still linked
    (its shape keys come with it)."""
    if _system_override(ob):
        ob.override_library.is_system_override = False
    if ob.type != "MESH":
        return
    if _linked(ob.data):
        ob.data.override_create(remap_local_usages=True)
    if _system_override(ob.data):
        ob.data.override_library.is_system_override = False


def editable_override(ob: Any) -> str | None:
    """An override the artist made (system overrides, a mesh still linked) made editable in place, with a note;
    None when there was nothing to do. A linked object that is no override is left to the caller."""
    if ob is None or ob.library is not None or ob.override_library is None or not needs_override(ob):
        return None
    _editable(ob)
    return f"{ob.name}: a library override; made it editable (its mesh too) so the keys are saved in this file"


def make_editable(objects: list[Any], scene: Any, view_layer: Any) -> tuple[list[Any], list[str]]:
    """The objects with every linked face made an editable library override (instances replaced by their
    override's meshes), and a note for each."""
    out: list[Any] = []
    notes: list[str] = []
    for ob in objects:
        if ob is None or not needs_override(ob):
            out.append(ob)
            continue
        name = ob.name
        library = (ob.instance_collection if instanced_meshes(ob) else ob).library
        meshes = _hierarchy_override(ob, scene, view_layer) if library is not None else [ob]
        for mesh in meshes:
            if mesh.type == "MESH" and mesh.data.shape_keys is not None:
                _editable(mesh)
        out += meshes
        source = f" from {library.filepath}" if library is not None else ""
        notes.append(f"{name}: linked{source}; made its face an editable library override "
                     f"({', '.join(m.name for m in meshes if m.type == 'MESH')}) so the keys are saved in this file; "
                     "the library file is not changed")
    return out, notes
