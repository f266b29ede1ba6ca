"""normalise_email gives exactly email-validator's verdicts, fast path included."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email

from digest.errors import InputError
from digest.subscribers import clean_name, mask_email, normalise_email

ADDRESSES = [
    "ada@example.com", "Ada.Lovelace@Example.COM", "  padded@example.com  ", "a+tag@sub.example.co.uk",
    "o'brien@example.ie", "x!#$%&'*+/=?^_`{|}~-y@example.com", "1@2.example", "a@b.c",
    "a..b@example.com", ".a@example.com", "a.@example.com", "a@-example.com", "a@example-.com",
    "a@example..com", "a@example.com.", "a@localhost", "a@example.test", "a@example.invalid",
    "a@example.local", "a@b@example.com", "@example.com", "a@", "a", "", "a b@example.com",
    '"quoted"@example.com', "a@[192.0.2.1]", "a@xn--bcher-kva.example", "a@bücher.example",
    "zoë@example.com", "x" * 64 + "@example.com", "x" * 65 + "@example.com",
    "a@" + "b" * 63 + ".com", "a@" + "b" * 64 + ".com", "a@" + ".".join(["c" * 60] * 4) + ".com",
    "a@example.com\n", "a\r\n@example.com", "a@exa_mple.com", "a@EXAMPLE.COM", "a@123.456",
]  # fmt: skip


def reference(address: str) -> str:
    try:
        return str(validate_email(address.strip(), check_deliverability=False).normalized).lower()
    except EmailNotValidError as exc:
        return f"invalid email address {address!r}: {exc}"


@pytest.mark.parametrize("address", ADDRESSES)
def test_same_verdict_and_message_as_email_validator(address: str) -> None:
    try:
        ours = normalise_email(address)
    except InputError as exc:
        ours = exc.message
    assert ours == reference(address)


def test_clean_name_strips_control_characters() -> None:
    assert clean_name("Ada\r\nBcc: x@example.com\t\x00") == "Ada Bcc: x@example.com"
    assert clean_name(" \r\n ") is None
    assert clean_name('Eve "E", Esq.') == 'Eve "E", Esq.'
    assert clean_name("Mallory\x1b[2J \x9b31m\x7fRed") == "Mallory [2J 31m Red"  # no terminal escape survives


def test_mask_email() -> None:
    assert mask_email("alice@example.com") == "a***e@example.com"
    assert mask_email("al@example.com") == "a***@example.com"
    assert mask_email("a@example.com") == "a***@example.com"
