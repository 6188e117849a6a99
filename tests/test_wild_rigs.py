"""Rigs as artists bring them (demo/wild.py): each case through lip sync and through contact, on the real
bpy, with no options beyond the defaults. Lip sync: the lips close on every p/b/m and part on every open
vowel, measured between an upper- and a lower-lip vertex of the evaluated mesh (picked here from the rig's
own jaw key, not by Oris). Contact: the checks of tests/contact_checks.py on the evaluated meshes."""

from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from demo.wild import CASES, WildScene, build  # noqa: E402
from oris.blender import lipsync as bl  # noqa: E402
from oris.blender.contact import HeadSpec, run_contact  # noqa: E402
from oris.core.align import Transcript  # noqa: E402
from oris.core.contact import ContactSettings  # noqa: E402
from oris.engine.model import find_model  # noqa: E402

from .conftest import DATA  # noqa: E402
from .contact_checks import assert_contact_on_evaluated_meshes, mesh_of  # noqa: E402
from .test_cli import BILABIAL_TEXT  # noqa: E402

LEAD = 0.06  # the mouth leads the sound
OPEN_VOWELS = {"aa", "ae", "ah", "ao", "aw", "ay"}


def phones() -> list[tuple[str, float, float]]:
    out, start = [], 0.0
    for token in (DATA / "bilabials_slt.phones").read_text().split():
        phone, end = token.rsplit(":", 1)
        out.append((phone, start, float(end)))
        start = float(end)
    return out


def lip_landmarks(mesh) -> tuple[np.ndarray, np.ndarray]:
    """The lips near the midline, from the rig's own jaw key: the lower lip is what the jaw carries (over
    half its reach), the upper lip what it leaves in place, both within 15 mm behind the chin-front lip."""
    key = mesh.data.shape_keys
    jaw = next(kb for kb in key.key_blocks if kb.name.lower().endswith("jawopen"))
    basis = np.array([v.co for v in key.reference_key.data])
    moved = np.linalg.norm(np.array([v.co for v in jaw.data]) - basis, axis=1)
    carried = moved > 0.5 * moved.max()
    centre = np.abs(basis[:, 0]) < 0.006
    front = basis[np.flatnonzero(centre & carried), 1].min()  # the face looks along -Y
    near = centre & (basis[:, 1] < front + 0.015)
    lip = np.flatnonzero(near & carried)
    top = basis[lip, 2].max()
    upper = np.flatnonzero(near & (moved < 0.15 * moved.max()) & (basis[:, 2] > top - 0.005) & (basis[:, 2] < top + 0.02))
    return lip, upper


def lip_gap(mesh, lower: np.ndarray, upper: np.ndarray) -> float:
    """The narrowest opening between the lips: the least distance from an upper- to a lower-lip vertex."""
    ev = mesh.evaluated_get(bpy.context.evaluated_depsgraph_get())
    co = np.empty(len(ev.data.vertices) * 3, np.float32)
    ev.data.vertices.foreach_get("co", co)
    m = np.array(ev.matrix_world)
    co = co.reshape(-1, 3).astype(np.float64) @ m[:3, :3].T + m[:3, 3]
    return float(np.linalg.norm(co[upper][:, None, :] - co[lower][None, :, :], axis=2).min())


@pytest.fixture(scope="module")
def card():
    return find_model().card


@pytest.mark.parametrize("case", list(CASES))
def test_lip_sync_closes_on_every_bilabial_and_opens_on_every_open_vowel(case, worker, card):
    w: WildScene = build(case)
    scene = bpy.context.scene
    face = mesh_of(w.lip_sync_meshes[0]) if len(w.lip_sync_meshes) == 1 else max(
        w.lip_sync_meshes, key=lambda m: len(m.data.vertices))
    lower, upper = lip_landmarks(face)
    report = bl.run(scene, w.lip_sync_meshes, str(DATA / "bilabials_slt.flac"), worker, start_frame=1,
                    transcript=Transcript(BILABIAL_TEXT), card=card)
    assert report.mode == "transcript"

    def gaps(start: float, end: float) -> list[float]:
        out = []
        for f in range(int(np.floor((start - LEAD - 0.04) * w.fps)) + 1, int(np.ceil((end + 0.04) * w.fps)) + 2):
            scene.frame_set(f)  # frame f shows time (f - 1) / fps
            out.append(lip_gap(face, lower, upper))
        return out

    for phone, start, end in phones():
        if phone in ("p", "b", "m"):
            closest = min(gaps(start, end))
            assert closest <= 1.0 * w.mm, f"{case}: lips {closest / w.mm:.1f} mm apart at {phone} {start:.2f} s"
        elif phone in OPEN_VOWELS and end - start >= 0.08:  # a 60 ms "uh" between b and t rightly stays narrow
            widest = max(gaps(start, end))
            assert widest >= 3.0 * w.mm, f"{case}: lips only {widest / w.mm:.1f} mm apart at {phone} {start:.2f} s"


@pytest.mark.parametrize("case", list(CASES))
def test_contact_touches_without_passing_through(case):
    w: WildScene = build(case)
    fc = int(2 * w.fps)
    report = run_contact(bpy.context.scene, HeadSpec(w.pair.a), HeadSpec(w.pair.b, bone=w.pair.bone_b),
                         ContactSettings(contact_frame=fc))
    assert_contact_on_evaluated_meshes(report, mesh_of(w.pair.a), mesh_of(w.pair.b), w.mm, fc, w.fps)
