"""Transcripts in other languages: espeak-ng's phonemes, the IPA table, and real speech through the CLI with its
script (tests/data/languages: Asterisk prompt voices in fr, es, it and ru; espeak-ng lines in de, pt, ja, zh)."""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pytest

from oris.cli import main
from oris.core.align import AlignmentError, Transcript, align_transcript, pronounce
from oris.core.espeak import word_phonemes
from oris.core.ipa import phones_of, unknown_symbols
from oris.core.languages import LANGUAGES

from .conftest import DATA
from .procs import run

CLIPS = DATA / "languages"
# a paragraph per language with its unusual sounds, to find every phoneme espeak-ng writes for it
SAMPLES = {
    "en": "The quick brown fox jumps over the lazy dog. Zyxwot, brunch, measure, thought, cheap, judge, sing, 42.",
    "fr": "Le vif renard brun saute par-dessus le chien paresseux. Un bon vin blanc, des œufs, une huître et du pain. "
          "Je voudrais parler à quelqu'un aujourd'hui. Peut-être, heureux, fille, gagner, oignon, soixante-dix-neuf.",
    "es": "El veloz murciélago hindú comía feliz cardillo y kiwi. La cigüeña tocaba el saxofón detrás del palenque de "
          "paja. Perro, quiero, pequeño, llave, jamón, año, guerra, hoy, treinta y dos.",
    "de": "Zwölf Boxkämpfer jagen Viktor quer über den großen Sylter Deich. Ich möchte bitte ein Pferd, Schnee, Bücher, "
          "Äpfel, Häuser, Eule, Rache, Tschüss, Quatsch, zweiundvierzig.",
    "it": "Quel vituperabile xenofobo zelante assaggia il whisky ed esclama: alleluja! Gnocchi, figlio, pizza, "
          "sciopero, ghiaccio, cento, giorno, bello, ventitré.",
    "pt": "Um pequeno jabuti xereta viu dez cegonhas felizes. Pão, mãe, coração, lhama, filho, chave, rato, carro, "
          "obrigado, irmão, vinte e três.",
    "pt-br": "Um pequeno jabuti xereta viu dez cegonhas felizes. Pão, mãe, coração, lhama, filho, tia, dia, vinte.",
    "ru": "Съешь же ещё этих мягких французских булок, да выпей чаю. Щука, жизнь, любовь, хорошо, спасибо, "
          "здравствуйте, двадцать пять.",
    "ja": "いろはにほへと ちりぬるを わかよたれそ つねならむ うゐのおくやま けふこえて あさきゆめみし ゑひもせす。"
          "こんにちは、ありがとう、ぱぴぷぺぽ、きゃ、しゅ、ちょ、ふじさん、がっこう、せんせい。",
    "zh": "我能吞下玻璃而不伤身体。你好，谢谢，朋友，爸爸，妈妈，中国，北京，学生，喜欢，绿色，女儿，二十五。",
}
LIPS = {"fr": "pbm", "es": "pbmv", "it": "pbm", "ru": "пбм"}  # the letters of each script that close the lips


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_every_phoneme_espeak_writes_maps_to_a_phone_and_a_viseme(language):
    voice = LANGUAGES[language][0]
    seen = 0
    for word in re.findall(r"[^\W_]+(?:['’][^\W_]+)*", SAMPLES[language]):
        for phoneme in word_phonemes(word, voice):
            seen += 1
            assert not unknown_symbols(phoneme), (word, phoneme)
            assert phones_of(phoneme, language), (word, phoneme)
    assert seen > 60


def test_the_mouth_follows_the_shape_not_the_sound():
    def visemes(word: str, language: str) -> list[str | None]:
        return [v for _p, v in pronounce(word, language)[0][0][1]]

    assert visemes("tu", "fr")[-1] == "ou"  # y: sounds like i, rounded like u
    assert visemes("peu", "fr")[-1] == "oh"  # ø
    assert visemes("bon", "fr") == ["PP", "oh"]  # a nasal vowel takes its oral vowel's shape
    assert visemes("rouge", "fr")[0] == "kk"  # uvular r: lips neutral
    assert visemes("perro", "es") == ["PP", "E", "DD", "oh"]  # a trilled r: the tongue tip, no rounding
    assert visemes("Bücher", "de")[:2] == ["PP", "ou"]


def test_english_words_the_dictionary_lacks_are_read_by_espeak():
    words, guessed = pronounce("brunchzyx pizza", "en")
    assert guessed == ["brunchzyx"] and words[0][1][0] == ("b", "PP")


@pytest.mark.parametrize("clip", ["fr_asterisk", "es_asterisk", "it_asterisk", "ru_asterisk", "de_espeak",
                                  "pt_espeak", "ja_espeak", "zh_espeak", "de_pico", "pt_kokoro", "ja_kokoro",
                                  "zh_kokoro"])
def test_transcript_mode_places_the_closures_of_the_script(clip, tmp_path):
    language = clip.split("_")[0]
    text = (CLIPS / f"{clip}.txt").read_text(encoding="utf-8").strip()
    out = tmp_path / "v.json"
    result = run([sys.executable, "-m", "oris", "visemes", CLIPS / f"{clip}.flac", "--text", text, "--language",
                  language, "--lead-ms", "0", "-o", out], timeout=300)
    assert result.returncode == 0, result.stderr
    doc = json.loads(out.read_text())
    assert doc["mode"] == "transcript" and doc["language"] == language, result.stderr
    words, _ = pronounce(text, language)
    flat = [v for _w, phones in words for _p, v in phones]
    expected = sum(v == "PP" and (i == 0 or flat[i - 1] != "PP") for i, v in enumerate(flat))  # "am Morgen": one
    closures = [c for c in doc["cues"] if c["viseme"] == "PP"]
    assert len(closures) == expected > 0
    with_lips = [w for w, (_token, phones) in zip(doc["words"], words) if any(v == "PP" for _p, v in phones)]
    for cue in closures:  # each closure sits inside a word whose script closes the lips
        middle = (cue["start"] + cue["end"]) / 2
        assert any(w["start"] - 0.02 <= middle <= w["end"] + 0.02 for w in with_lips), (cue, with_lips)


def test_a_script_of_another_prompt_is_refused_and_the_audio_alone_kept(tmp_path):
    other = (CLIPS / "it_asterisk.txt").read_text(encoding="utf-8")  # Italian words on a French line
    out = tmp_path / "v.json"
    result = run([sys.executable, "-m", "oris", "visemes", CLIPS / "fr_asterisk.flac", "--text", other,
                  "--language", "fr", "-o", out], timeout=300)
    assert result.returncode == 0 and "does not seem to match the audio" in result.stderr
    assert json.loads(out.read_text())["mode"] == "audio"


def _closures_fall_on_lips(doc: dict, language: str) -> None:
    """Every closure of the animation lies within a word whose pronunciation closes the lips, and there is one."""
    with_lips = [w for w in doc["words"] if any(v == "PP" for _p, v in pronounce(w["word"], language)[0][0][1])]
    closures = [c for c in doc["cues"] if c["viseme"] == "PP"]
    assert closures and with_lips
    for cue in closures:
        middle = (cue["start"] + cue["end"]) / 2
        assert any(w["start"] - 0.03 <= middle <= w["end"] + 0.03 for w in with_lips), (cue, with_lips)


@pytest.mark.parametrize("clip", ["fr_asterisk", "es_asterisk", "it_asterisk", "ru_asterisk", "de_pico", "pt_kokoro",
                                  "ja_kokoro", "zh_kokoro"])
@pytest.mark.parametrize("language", ["auto", "given"])
def test_recognized_mode_hears_the_words_in_their_language(clip, language, tmp_path):
    code = clip.split("_")[0]
    out = tmp_path / "v.json"
    args = ["--language", code] if language == "given" else []  # auto is the default
    result = run([sys.executable, "-m", "oris", "visemes", CLIPS / f"{clip}.flac", "--lead-ms", "0", "-o", out, *args],
                 timeout=300)
    assert result.returncode == 0, result.stderr
    doc = json.loads(out.read_text())
    assert doc["mode"] == "recognized" and doc["language"] == code, result.stderr
    script = (CLIPS / f"{clip}.txt").read_text(encoding="utf-8")
    said = {w.lower() for w, _ in pronounce(script, code)[0]}
    heard = [w["word"].lower() for w in doc["words"]]
    if code != "zh":  # Mandarin may come back in traditional characters, the script's words in simplified
        assert sum(w in said for w in heard) >= 0.6 * len(heard) > 0, (doc["recognized_text"], script)
    assert [r["language"] for r in doc["recognized"]] == [code]
    assert doc["model"]["visemes"] == "multilingual"  # the recognizer's language picked the viseme model
    _closures_fall_on_lips(doc, code)


def test_a_script_in_the_auto_language_is_read_in_the_language_of_its_words(tmp_path):
    out = tmp_path / "v.json"
    text = (CLIPS / "es_asterisk.txt").read_text(encoding="utf-8").strip()
    result = run([sys.executable, "-m", "oris", "visemes", CLIPS / "es_asterisk.flac", "--text", text, "-o", out],
                 timeout=300)
    assert result.returncode == 0, result.stderr
    doc = json.loads(out.read_text())
    assert (doc["mode"], doc["language"]) == ("transcript", "es")


def test_a_script_too_short_to_say_its_language_takes_the_one_the_recognizer_hears(worker):
    from oris.core.audio import decode_file
    from oris.core.curves import CurveSettings
    from oris.lipsync import analyze

    audio = decode_file(CLIPS / "fr_asterisk.flac").samples
    result = analyze(audio, worker, 24.0, CurveSettings(), Transcript("Personne", "auto"))  # a name, in any language
    assert result.language == "fr"


def test_guessing_a_scripts_language_from_its_words():
    from oris.core.languages import guess_language

    assert guess_language("Personne n'est en mesure de prendre votre appel en ce moment.") == "fr"
    assert guess_language("Por favor, marque el número que desea llamar.") == "es"
    assert guess_language("Bitte machen Sie eine kleine Pause am Morgen.") == "de"
    assert guess_language("O meu pai bebe um copo de leite pela manhã.") == "pt"
    assert guess_language("Premere asterisco per tornare al menu principale.") == "it"
    assert guess_language("Press seven to delete this message.") == "en"
    assert guess_language("Это неверный пароль.") == "ru"
    assert guess_language("パパは毎晩帽子をかぶります。") == "ja"
    assert guess_language("爸爸妈妈不喜欢苹果。") == "zh"
    assert guess_language("Bonjour") is None and guess_language("Tom Bombadil") is None  # the audio will say


def _heard_posteriors(worker, clip: str, **window: object):
    from oris.core.audio import decode_file
    from oris.engine.client import Posteriors

    audio = decode_file(CLIPS / f"{clip}.flac").samples
    real = worker.infer(audio)
    heard = {"start": 0.0, "end": round(len(audio) / 16000, 3), "avg_logprob": -0.2, "no_speech_prob": 0.01,
             "compression_ratio": 1.2, "language_probability": 0.9, "trusted": True, **window}
    return Posteriors(real.visemes, real.phones, heard=(heard,)), len(audio) / 16000


def test_a_language_oris_does_not_read_keeps_the_audio_and_names_it(worker):
    from oris.core.curves import CurveSettings
    from oris.lipsync import animate_recognized

    posteriors, seconds = _heard_posteriors(worker, "es_asterisk", text="Per favor, marqueu el número.",
                                            language="ca", sentences=[])
    result = animate_recognized(posteriors, seconds, 24.0, CurveSettings())
    assert result.mode == "audio" and any("heard Catalan, which Oris does not read" in w for w in result.warnings)


def test_an_unsure_sentence_keeps_the_audio_alone_over_its_own_stretch(worker):
    from oris.core.curves import CurveSettings, cues_from_posteriors
    from oris.lipsync import animate_recognized

    sentences = [{"text": "Por favor.", "avg_logprob": -0.1, "trusted": True},
                 {"text": "Marque el número que desea llamar.", "avg_logprob": -1.5, "trusted": False}]
    posteriors, seconds = _heard_posteriors(worker, "es_asterisk", text="Por favor. Marque el número que desea llamar.",
                                            language="es", sentences=sentences)
    settings = CurveSettings(lead_seconds=0.0)
    result = animate_recognized(posteriors, seconds, 24.0, settings)
    assert result.mode == "recognized" and [w["word"] for w in result.words] == ["Por", "favor"]
    assert any("unsure of these words" in w for w in result.warnings)
    favor_end = result.words[-1]["end"]
    audio = [c for c in cues_from_posteriors(posteriors.visemes, settings, posteriors.frame_rate) if c.start > favor_end + 0.3]
    later = [c for c in result.animation.cues if c.start > favor_end + 0.3]
    assert audio and [(c.start, c.viseme) for c in later][:3] == [(c.start, c.viseme) for c in audio][:3]
    everything = [dict(s, trusted=True) for s in sentences]
    trusted, _ = _heard_posteriors(worker, "es_asterisk", text="Por favor. Marque el número que desea llamar.",
                                   language="es", sentences=everything)
    assert len(animate_recognized(trusted, seconds, 24.0, settings).words) == 8


def test_an_unknown_language_is_refused_with_the_list(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["visemes", "x.wav", "--language", "xx"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "unknown language 'xx'" in err and "fr (French)" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("text, message", [("", "the transcript is empty"), ("... !!", r"no words \(only punctuation"),
                                           ("  ¿? «»", r"no words \(only punctuation"),
                                           ("我们已经爬上了梯子的一级", "looks like Mandarin Chinese, not French")])
def test_unreadable_scripts_get_one_clear_message(text, message):
    with pytest.raises(AlignmentError, match=message):
        align_transcript(Transcript(text, "fr"), np.zeros((200, 40), "float32"), 100.0)


def test_japanese_kanji_are_read_and_particles_said_as_spoken():
    words, _ = pronounce("パパは毎晩帽子をかぶります。", "ja")
    assert [w for w, _p in words][:4] == ["パパ", "は", "毎晩", "帽子"]
    assert [p for p, _v in words[1][1]] == ["w", "aa"]  # は, the topic particle, is said wa
    assert [v for _p, v in words[2][1]][:1] == ["PP"] and "PP" in [v for _p, v in words[3][1]]  # mai-ban, boushi


def test_a_japanese_script_in_kanji_times_the_same_line(tmp_path):
    out = tmp_path / "v.json"
    result = run([sys.executable, "-m", "oris", "visemes", CLIPS / "ja_espeak.flac", "--text", "パパは毎晩帽子をかぶります。",
                  "--language", "ja", "-o", out], timeout=300)
    assert result.returncode == 0, result.stderr
    doc = json.loads(out.read_text())
    assert doc["mode"] == "transcript" and [w["word"] for w in doc["words"]][2:4] == ["毎晩", "帽子"]


def test_a_manifest_row_names_its_language(tmp_path):
    manifest = tmp_path / "lines.csv"
    rows = ["audio,text,language"]
    for clip, language in (("fr_asterisk", "fr"), ("es_asterisk", "es")):
        rows.append(f"{CLIPS / (clip + '.flac')},\"{(CLIPS / (clip + '.txt')).read_text(encoding='utf-8').strip()}\",{language}")
    rows.append(f"{CLIPS / 'fr_asterisk.flac'},bonjour,klingon")
    manifest.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = run([sys.executable, "-m", "oris", "visemes", "--batch", manifest, "-o", tmp_path / "out",
                  "--summary", tmp_path / "s.json"], timeout=300)
    assert result.returncode == 1 and "unknown language 'klingon'" in result.stderr
    assert [json.loads((tmp_path / "out" / f"{c}.json").read_text())["mode"] for c in ("fr_asterisk", "es_asterisk")] \
        == ["transcript", "transcript"]


def test_the_panel_reads_a_french_script_in_its_language():
    bpy = pytest.importorskip("bpy")
    import oris
    from demo.scenes import MH_HEAD, load_head

    bpy.ops.wm.read_factory_settings(use_empty=False)
    for ob in list(bpy.data.objects):
        bpy.data.objects.remove(ob)
    oris.register()
    try:
        ob = load_head(MH_HEAD, "Face")
        ob.select_set(True)
        bpy.context.view_layer.objects.active = ob
        s = bpy.context.scene.oris_lipsync
        s.audio_path, s.transcript_source = str(CLIPS / "fr_asterisk.flac"), "TEXT"
        s.transcript, s.language = (CLIPS / "fr_asterisk.txt").read_text(encoding="utf-8").strip(), "fr"
        assert bpy.ops.oris.lipsync() == {"FINISHED"}
        assert s.status.endswith("transcript mode"), s.status
    finally:
        oris.unregister()


def test_a_broken_espeak_install_is_a_clear_message_not_a_traceback(monkeypatch):
    from oris.core import align, espeak

    def missing(word: str, voice: str) -> tuple[str, ...]:
        raise espeak.EspeakError("espeak-ng is not installed (pip install espeakng-loader)")

    monkeypatch.setattr(align, "word_phonemes", missing)
    with pytest.raises(AlignmentError, match="pip install espeakng-loader"):  # the line then uses the audio alone
        align_transcript(Transcript("bonjour", "fr"), np.zeros((200, 40), "float32"), 100.0)


@pytest.mark.parametrize("text, language, looks", [
    ("我们已经爬上了梯子的一级", "fr", "zh"), ("Мы поднялись на одну ступеньку", "en", "ru"),
    ("パパは毎晩帽子をかぶります", "zh", "ja"), ("the quick brown fox is here and there", "ru", "en"),
    ("毎晩帽子", "ja", None),  # kanji alone: Japanese is written with them too
    ("Personne n'est en mesure de prendre votre appel", "es", None),  # Latin script: the alignment judges it
    ("... !!", "fr", None),
])
def test_a_script_whose_writing_system_cannot_be_the_language_is_named(text, language, looks):
    from oris.core.languages import script_mismatch

    assert script_mismatch(text, language) == looks


def test_the_multilingual_viseme_model_ships_beside_the_english_one_with_its_decoding():
    from oris.engine.model import MULTILINGUAL_FILE, file_sha256, find_model, find_multilingual

    english = find_model()
    other = find_multilingual(english)
    assert other is not None and other.path.name == MULTILINGUAL_FILE
    assert file_sha256(other.path) == other.sha256 != english.sha256
    # the client decodes every line with the English card's constants: the two must agree
    assert other.card["decoding"] == english.card["decoding"]


def test_the_multilingual_card_is_read_again_when_it_changes_and_not_per_line(tmp_path):
    import os
    import shutil

    from oris.engine.model import MULTILINGUAL_FILE, find_model, find_multilingual

    shipped = find_multilingual(find_model())
    assert shipped is not None
    for model in (find_model(), shipped):  # a copy of both models, to change one card
        shutil.copy(model.path, tmp_path / model.path.name)
        shutil.copy(model.path.with_suffix(".json"), tmp_path / model.path.with_suffix(".json").name)
    english = find_model(tmp_path / find_model().path.name)
    first = find_multilingual(english)
    assert first is not None and find_multilingual(english) is first  # a batch's lines share one read
    card = tmp_path / MULTILINGUAL_FILE.replace(".onnx", ".json")
    doc = json.loads(card.read_text())
    before = card.stat().st_mtime
    card.write_text(json.dumps({**doc, "sha256": "0" * 64}))
    os.utime(card, (before + 2, before + 2))  # a changed file, even where the clock ticks coarsely
    changed = find_multilingual(english)
    assert changed is not None and changed.sha256 == "0" * 64


def test_a_line_in_another_language_runs_the_multilingual_viseme_model(worker):
    from oris.core.audio import decode_file

    french = decode_file(CLIPS / "fr_asterisk.flac").samples
    assert worker.infer(french).model == "en"  # not told and not recognizing: English, as ever
    assert worker.infer(french, language="en").model == "en"
    told = worker.infer(french, language="fr")
    assert told.model == "multilingual"
    named = worker.infer(french, recognize="language")  # auto: the recognizer's first window names French
    assert named.model == "multilingual" and [h["language"] for h in named.heard] == ["fr"]
    assert np.allclose(named.visemes, told.visemes, atol=1e-4)
    english = decode_file(DATA / "bilabials_slt.flac").samples
    assert worker.infer(english, recognize="language").model == "en"


def test_audio_alone_in_a_told_language_is_animated_by_the_multilingual_model(tmp_path):
    out = tmp_path / "v.json"
    result = run([sys.executable, "-m", "oris", "visemes", CLIPS / "it_asterisk.flac", "--audio-only", "--language", "it",
                  "-o", out], timeout=300)
    assert result.returncode == 0, result.stderr
    doc = json.loads(out.read_text())
    assert (doc["mode"], doc["model"]["visemes"]) == ("audio", "multilingual")
    plain = tmp_path / "plain.json"
    assert run([sys.executable, "-m", "oris", "visemes", CLIPS / "it_asterisk.flac", "--audio-only", "-o", plain],
               timeout=300).returncode == 0
    assert json.loads(plain.read_text())["model"]["visemes"] == "en"
