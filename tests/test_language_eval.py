"""The other-language evaluation's pieces (models/recipe/languages_corpus.py, models/evaluate.py): the festvox-ru
phone mapping, the held-out choice of Asterisk prompts, and scoring against Oris's own alignment. No worker."""

from __future__ import annotations

import gzip
import random
import sys
from pathlib import Path

import numpy as np
import pytest

MODELS = Path(__file__).resolve().parents[1] / "models"
sys.path.insert(0, str(MODELS / "recipe"))
sys.path.insert(0, str(MODELS))
import languages_corpus as lc  # noqa: E402
from labels import Score  # noqa: E402

from addon.core.visemes import PHONE_INDEX, PHONES, VISEME_INDEX, phones_to_visemes  # noqa: E402

# the msu_ru phone set (festvox/msu_ru_nsh_phoneset.scm)
MSU_RU = ("pau ii yy uu ee oo aa a e i y u ae ay ur p pp b bb t tt d dd k kk g gg c ch f ff v vv s ss z zz sh sch zh "
          "h hh m mm n nn l ll r rr j").split()


def test_every_festvox_ru_phone_maps_to_the_mouth_shape_of_its_sound() -> None:
    assert set(lc.FESTVOX_RU_PHONES) == set(MSU_RU)
    assert all(p in PHONE_INDEX for phones in lc.FESTVOX_RU_PHONES.values() for p in phones)
    shape = {ph: phones_to_visemes(list(lc.FESTVOX_RU_PHONES[ph])) for ph in MSU_RU}
    for ph in ("p", "pp", "b", "bb", "m", "mm"):
        assert shape[ph] == ["PP"]
    for ph in ("f", "ff", "v", "vv"):
        assert shape[ph] == ["FF"]
    for ph in ("oo", "uu", "u", "ur"):
        assert shape[ph] in (["oh"], ["ou"])
    assert shape["r"] == shape["rr"] == ["DD"]  # a trilled r, as addon/core/ipa.py shows it
    assert shape["c"] == ["DD", "SS"] and shape["pau"] == ["sil"]


def test_festvox_labels_split_an_affricate_and_keep_end_times(tmp_path: Path) -> None:
    lab = tmp_path / "x.lab"
    lab.write_text("#\n0.30000 125 pau\n0.40000 125 c\n0.50000 125 oo\n0.60000 125 mm\n")
    ends = lc.festvox_labels(lab)
    assert [p for p, _ in ends] == ["sil", "t", "s", "ao", "m"]
    assert [e for _, e in ends] == pytest.approx([0.3, 0.35, 0.4, 0.5, 0.6])


def _fake_asterisk(root: Path, language: str, n: int) -> None:
    doc = root / "usr" / "share" / "doc" / f"asterisk-core-sounds-{language}"
    sounds = root / "usr" / "share" / "asterisk" / "sounds" / f"{language}_XX_f_Voice"
    doc.mkdir(parents=True)
    sounds.mkdir(parents=True)
    lines = []
    for k in range(n):
        lines.append(f"p{k:03d}: mot numéro {k}")
        (sounds / f"p{k:03d}.wav").write_bytes(b"")
    with gzip.open(doc / f"core-sounds-{language}.txt.gz", "wt", encoding="utf-8") as f:
        f.write("; comment\n" + "\n".join(lines) + "\n")


def test_held_out_asterisk_prompts_are_never_those_the_thresholds_were_chosen_on(tmp_path: Path) -> None:
    _fake_asterisk(tmp_path, "fr", 300)
    held = lc.asterisk_heldout("fr", 60, root=tmp_path)
    names = sorted(f"p{k:03d}" for k in range(300))
    random.Random(1).shuffle(names)  # as language_thresholds.py chooses them
    used = set(names[:lc.THRESHOLD_PROMPTS["fr"]])
    assert len(held) == 60 and not used & {name for name, _path, _text in held}
    assert held == lc.asterisk_heldout("fr", 60, root=tmp_path)  # fixed
    assert all(path.name == f"{name}.wav" and text.startswith("mot") for name, path, text in held)


def test_scoring_against_oris_own_alignment() -> None:
    from evaluate import frames_as_segments

    v = VISEME_INDEX
    reference = np.array([v["sil"]] * 10 + [v["PP"]] * 8 + [v["aa"]] * 20 + [v["oh"]] * 10 + [v["sil"]] * 10)
    segments = frames_as_segments(reference)
    assert [PHONES[p] for _s, _e, p in segments] == ["sil", "p", "aa", "ao", "sil"]
    same = Score()
    same.add(reference, reference, segments)
    assert same.summary()["viseme15_frame_accuracy"] == 1.0 and same.summary()["bilabial_recall"] == 1.0
    no_closure = reference.copy()
    no_closure[no_closure == v["PP"]] = v["nn"]
    missed = Score()
    missed.add(no_closure, reference, segments)
    assert missed.summary()["bilabial_recall"] == 0.0 and missed.summary()["bilabials_before_vowel"] == 1


def test_the_language_table_names_its_reference_and_the_targets() -> None:
    from evaluate import language_missed, language_table

    def mode(acc: float) -> dict:
        return {"viseme15_frame_accuracy": acc, "mouth6_frame_accuracy": acc, "bilabial_recall": 1.0,
                "bilabial_precision": 1.0, "bilabials": 3, "frames": 100}

    sets = {
        "festvox-ru": {"language": "ru", "clips": 2, "minutes": 1.0, "real_time_factor": 0.3,
                       "reference": "the voice's own festival phone labels",
                       "transcript": {**mode(0.85), "fell_back_to_audio": 0}, "audio_only": mode(0.7),
                       "recognized": {**mode(0.80), "windows": 2, "windows_used": 2, "windows_used_share": 1.0,
                                      "mouth6_points_below_transcript": 5.0}},
        "asterisk-fr": {"language": "fr", "clips": 2, "minutes": 1.0, "real_time_factor": 0.3,
                        "reference": "Oris's own transcript-mode alignment", "transcript": {"fell_back_to_audio": 1},
                        "audio_only": mode(0.7),
                        "recognized": {**mode(0.95), "windows": 4, "windows_used": 3, "windows_used_share": 0.75}},
    }
    text = "\n".join(language_table(sets, "Whisper base", True))
    assert "reference: Oris's own transcript-mode alignment" in text and "(the reference)" in text
    assert "3/4 (75%)" in text and "+5.0 points below transcript" in text
    assert language_missed(sets) == ["festvox-ru recognized 6-class 5.0 points below transcript",
                                     "asterisk-fr windows used 75%"]


def test_the_card_section_on_other_languages() -> None:
    from evaluate import language_card_lines

    assert language_card_lines(None) == []
    acc = {"viseme15_frame_accuracy": 0.7, "mouth6_frame_accuracy": 0.8, "bilabial_recall": 0.9,
           "bilabial_precision": 0.9, "frames": 100}
    langs = {"recognizer": "Whisper base", "language_told": True,
             "held_out": {"festvox-ru": "a fixed sample", "asterisk": "the prompts the thresholds did not use"},
             "sets": {"asterisk-it": {"language": "it", "clips": 60, "minutes": 3.2, "reference": "Oris's own",
                                      "transcript": {"fell_back_to_audio": 0}, "audio_only": acc,
                                      "recognized": {**acc, "windows": 60, "windows_used": 57,
                                                     "windows_used_share": 0.95}}}}
    text = "\n".join(language_card_lines(langs))
    assert "| asterisk-it | transcript | (the reference) |" in text and "57 of 60" in text and "All met." in text
