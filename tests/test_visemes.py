import pytest

from oris.core.visemes import PHONES, VISEMES, normalize_phone, phones_to_visemes


def test_contract_order_of_the_15_visemes():
    assert VISEMES == ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou")
    assert len(PHONES) == 40 and PHONES[0] == "sil"


@pytest.mark.parametrize("raw,expected", [("AH0", "ah"), ("pau", "sil"), ("ax", "ah"), ("SIL", "sil"), ("dx", "d"), ("axr", "er")])
def test_engine_phone_labels_fold_onto_the_inventory(raw, expected):
    assert normalize_phone(raw) == expected


def test_unknown_phone_is_an_error():
    with pytest.raises(KeyError):
        normalize_phone("qq")


def test_issue_mapping_and_hh_takes_the_next_vowel():
    phones = ["sil", "hh", "uw", "m", "b", "f", "th", "t", "k", "ch", "s", "n", "r", "aa", "eh", "iy", "ow", "hh", "aa"]
    assert phones_to_visemes(phones) == [
        "sil", "ou", "ou", "PP", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "aa", "aa"]
