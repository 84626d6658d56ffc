"""Test phone numbers: each one in its own thousand-number block.

The fraud guard counts challenges per thousand-number block (the E.164 digits without the last three) and
trips a block on its 11th challenge in an hour, so numbers handed out one after another in one block would
couple the tests that share a stack. These generators give every number a block of its own.
"""

from __future__ import annotations

from collections.abc import Iterator

import phonenumbers


def fresh_numbers(exchanges: range, area: str = "650") -> Iterator[str]:
    """Valid US numbers ``+1 <area> <exchange> <d>NNN``, one per thousand-number block, in order."""
    for exchange in exchanges:
        for thousand in range(10):
            number = f"+1{area}{exchange:03d}{thousand}253"
            if phonenumbers.is_valid_number(phonenumbers.parse(number)):
                yield number
