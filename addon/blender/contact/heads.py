"""Stage 1: what the user picked becomes a head: its controller (an object, or an armature and its head
bone), the face meshes that follow it, and their shape keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import bpy
import numpy as np
from mathutils import Matrix

from ...core.contact import (
    ContactError,
)
from ..overrides import MAKE_OVERRIDE_MENU, editable_override
from ..shapekeys import check_editable
from .body import BodyRest, body_rest, spine_chain

HEAD_BONE_NAMES = ("head", "Head", "mixamorig:Head", "DEF-head", "ORG-head", "CC_Base_Head", "J_Bip_C_Head",
                   "DEF-spine.006")  # the last: the head of Rigify's deform bones


class PickError(ContactError):
    """What was picked or asked for does not exist or cannot be had (an object, bone, lip point or frame range
    that is not there): bad input, refused before any work (exit 2 on the command line)."""


@dataclass
class HeadSpec:
    """What the user picked for one side, with optional overrides."""

    obj: Any
    bone: str = ""  # for an armature: its head bone ("" = find it)
    lip_object: Any = None  # an empty (or any object) at the lip contact point
    lip_group: str = ""  # or a vertex group at the lips
    lip_vertex: int = -1  # or one vertex (index in the first mesh)
    facing: str = "AUTO"  # or the controller's local axis the face looks along: -Y, +Y, -X, +X, -Z, +Z


@dataclass(frozen=True)
class Rest:
    world: Matrix  # the head (its bone) in world space
    basis: Matrix  # and its own channels
    body: BodyRest | None  # for a head bone with a parent: the body it rides on


@dataclass
class Head:
    name: str
    controller: Any  # the object whose transform is keyed (an armature when bone is set)
    bone: str
    meshes: list[tuple[Any, np.ndarray | None]]  # (mesh object, vertex subset or None for all)
    keys: list[Any]  # Key datablocks of those meshes
    spec: HeadSpec
    notes: list[str] = field(default_factory=list)
    chain: tuple[str, ...] = ()  # a head bone with a parent rides on a body: the bones that share its turn (body.py)
    topology: dict[int, np.ndarray] = field(default_factory=dict, repr=False)  # per mesh: its (head's) triangles

    @property
    def on_body(self) -> bool:
        """A head bone with a neck under it: a character that stands, walks and bends (body.py), not a head rig."""
        return len(self.chain) >= 2

    @property
    def path_prefix(self) -> str:
        return f'pose.bones["{bpy.utils.escape_identifier(self.bone)}"].' if self.bone else ""

    def world_matrix(self) -> Matrix:
        if self.bone:
            return self.controller.matrix_world @ self.controller.pose.bones[self.bone].matrix
        return self.controller.matrix_world.copy()

    def basis(self) -> Matrix:
        return (self.controller.pose.bones[self.bone] if self.bone else self.controller).matrix_basis.copy()

    def rest(self) -> Rest:
        """The transforms keying starts from: the head's, and for a head on a body the body's."""
        return Rest(self.world_matrix(), self.basis(), body_rest(self.controller, self.chain) if self.chain else None)

    @property
    def rotation_mode(self) -> str:
        return (self.controller.pose.bones[self.bone] if self.bone else self.controller).rotation_mode


# ------------------------------------------------------------------------------ resolving

def _bone_subtree(arm: Any, bone: str) -> set[str]:
    root = arm.data.bones[bone]
    return {root.name, *(b.name for b in root.children_recursive)}


def _find_head_bone(arm: Any) -> str:
    names = [b.name for b in arm.data.bones]
    for wanted in HEAD_BONE_NAMES:
        if wanted in names:
            return wanted
    heads = [n for n in names if n.lower().rsplit(":", 1)[-1].rsplit("_", 1)[-1] == "head"]
    if heads:
        return heads[0]
    raise ContactError(f"{arm.name}: no head bone found (looked for {', '.join(HEAD_BONE_NAMES[:3])}); pick the bone "
                       "(--a-bone/--b-bone on the command line)")


def deformed_by(rig: Any) -> list[tuple[Any, Any]]:
    """The meshes an armature deforms, each with its Armature modifier."""
    return [(m, mod) for m in bpy.data.objects if m.type == "MESH" for mod in m.modifiers
            if mod.type == "ARMATURE" and getattr(mod, "object", None) == rig]


def character_of(ob: Any) -> Any:
    """What moves for a pick: a mesh that an armature with a head bone deforms is part of a character, and the
    character (its armature) moves, not the mesh alone."""
    if ob is None or ob.type != "MESH":
        return ob
    arm = ob.find_armature()
    if arm is None:
        return ob
    try:
        _find_head_bone(arm)
    except ContactError:
        return ob
    return arm


def resolve_head(spec: HeadSpec, label: str) -> Head:
    picked = spec.obj
    ob = character_of(picked)
    if ob is None:
        raise ContactError(f"choose head {label}")
    notes = [n for n in [editable_override(ob)] if n]
    if ob is not picked:
        notes.append(f"{picked.name}: part of the character {ob.name}, which moves as a whole")
    check_editable(ob)
    if ob.type == "ARMATURE":
        bone = spec.bone or _find_head_bone(ob)
        if bone not in ob.pose.bones:
            raise PickError(f"{ob.name} has no bone {bone!r} (bones: {', '.join(b.name for b in ob.pose.bones)[:300]})")
        subtree = _bone_subtree(ob, bone)
        meshes: list[tuple[Any, np.ndarray | None]] = []
        deformed = {id(m) for m, _ in deformed_by(ob)}
        for child in bpy.data.objects:
            if child.type != "MESH":
                continue
            if child.parent == ob and child.parent_type == "BONE" and child.parent_bone in subtree:
                meshes.append((child, None))
            elif id(child) in deformed:
                subset = _bone_weighted(child, subtree)
                if subset is not None and len(subset):
                    meshes.append((child, subset))
        if not meshes:
            raise ContactError(f"{ob.name}: no mesh follows bone {bone!r} (parented to it or weighted to it)")
    elif ob.type in ("MESH", "EMPTY") or any(c.type == "MESH" for c in ob.children_recursive):
        bone = ""
        meshes = [(m, None) for m in ([ob] if ob.type == "MESH" else []) + [c for c in ob.children_recursive if c.type == "MESH"]]
        if not meshes and ob.instance_collection is not None:
            raise ContactError(f"{ob.name}: a linked collection instance; make it a library override first "
                               f"({MAKE_OVERRIDE_MENU}; in a script, bpy.ops.object.make_override_library()), "
                               "then pick its head mesh or armature")
        if not meshes:
            raise ContactError(f"{ob.name}: an empty with no meshes under it; pick the head mesh or its parent")
    else:
        raise ContactError(f"{ob.name} is a {ob.type.lower()}, not a head: pick a mesh, its parent, or an armature")
    if abs(np.linalg.det(np.array(ob.matrix_world)[:3, :3])) < 1e-18:
        raise ContactError(f"{ob.name} has zero scale; fix its scale first")
    for m, _ in meshes:
        notes += [n for n in [editable_override(m)] if n]
        check_editable(m)
        if abs(np.linalg.det(np.array(m.matrix_world)[:3, :3])) < 1e-18:
            raise ContactError(f"{m.name} has zero scale; fix its scale first")
    keys = list({id(m.data.shape_keys): m.data.shape_keys for m, _ in meshes if m.data.shape_keys}.values())
    chain = spine_chain(ob, bone) if bone and ob.data.bones[bone].parent is not None else ()
    for m, subset in meshes:
        if chain and subset is not None:
            _check_weighted(m, subset, ob, bone)
    return Head(ob.name + (f":{bone}" if bone else ""), ob, bone, meshes, keys, spec, notes, chain)


def _check_weighted(mesh: Any, head_part: np.ndarray, rig: Any, bone: str) -> None:
    """A body's vertices inside its head that no bone moves (eyes, teeth, a tongue that automatic weights missed)
    stay behind when the head turns: refused, with the fix."""
    deform = {g.index for g in mesh.vertex_groups if g.name in rig.data.bones and rig.data.bones[g.name].use_deform}
    co = np.empty(len(mesh.data.vertices) * 3, np.float32)
    mesh.data.vertices.foreach_get("co", co)
    co = co.reshape(-1, 3)
    lo, hi = co[head_part].min(axis=0), co[head_part].max(axis=0)
    inside = np.flatnonzero(np.all((co >= lo) & (co <= hi), axis=1))
    stray = [int(i) for i in inside if not any(g.group in deform and g.weight > 0 for g in mesh.data.vertices[i].groups)]
    if stray:
        raise PickError(f"{mesh.name}: {len(stray)} vertices inside the head (eyes, teeth or tongue?) are weighted to no "
                        f"bone of {rig.name}, so they would stay behind as the head turns; weight them to {bone!r} "
                        "(Weight Paint, or assign them to its vertex group), then run contact again")


def _bone_weighted(ob: Any, bones: set[str]) -> np.ndarray | None:
    """Vertices weighted mostly (>= 0.5) to the head bone and its children."""
    groups = {g.index for g in ob.vertex_groups if g.name in bones}
    if not groups:
        return None
    weight = np.zeros(len(ob.data.vertices))
    for v in ob.data.vertices:
        for g in v.groups:
            if g.group in groups:
                weight[v.index] += g.weight
    return np.flatnonzero(weight >= 0.5)

