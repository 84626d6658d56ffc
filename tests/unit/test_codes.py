from __future__ import annotations

import collections

import pytest

from otp_core.codes import CodeBook


def test_codes_have_the_policy_length_and_only_digits():
    book = CodeBook(b"s" * 32)
    codes = [book.new_code(8) for _ in range(200)]
    assert all(len(code) == 8 and code.isdigit() for code in codes)


def test_codes_are_unbiased_across_leading_digits():
    # Given many 4-digit codes, each leading digit (0 included) appears about 10% of the time.
    book = CodeBook(b"s" * 32)
    counts = collections.Counter(book.new_code(4)[0] for _ in range(20_000))
    assert set(counts) == set("0123456789")
    assert all(1_700 < count < 2_300 for count in counts.values())


def test_mask_round_trips_and_hides_the_code():
    book = CodeBook(b"s" * 32)
    masks = {book.mask(f"challenge-{i}", "123456") for i in range(50)}
    assert "123456" not in masks or len(masks) > 40
    assert book.unmask("challenge-1", book.mask("challenge-1", "000042")) == "000042"


def test_hash_is_bound_to_the_challenge_and_the_key():
    book, other = CodeBook(b"s" * 32), CodeBook(b"t" * 32)
    stored = book.code_hash("a", "123456")
    assert book.matches("a", "123456", stored)
    assert not book.matches("b", "123456", stored)
    assert not book.matches("a", "123457", stored)
    assert not other.matches("a", "123456", stored)


def test_a_copy_of_the_table_alone_does_not_reveal_the_code():
    # Without the key, a stored mask is consistent with every code: the pad is keyed.
    codes_seen = {CodeBook(bytes([i]) * 32).unmask("c", "555555") for i in range(1, 30)}
    assert len(codes_seen) > 25


def test_a_short_key_is_refused():
    with pytest.raises(ValueError, match="must be"):
        CodeBook(b"short")


@pytest.mark.parametrize("length", [3, 11])
def test_codes_outside_4_to_10_digits_are_refused(length):
    with pytest.raises(ValueError, match="must be"):
        CodeBook(b"k" * 32).new_code(length)


def test_a_mask_keeps_the_length_of_its_code():
    # A challenge keeps its code length when the policy changes: the mask is as long as the code.
    book = CodeBook(b"s" * 32)
    for code in ("0042", "00000042", "1234567890"):
        assert len(book.mask("c", code)) == len(code)
        assert book.unmask("c", book.mask("c", code)) == code


def test_subject_keys_are_opaque_and_stable():
    book = CodeBook(b"s" * 32)
    key = book.subject_key("phone", "+14155552671")
    assert key == book.subject_key("phone", "+14155552671")
    assert "4155552671" not in key
    assert key != book.subject_key("ip", "+14155552671")
