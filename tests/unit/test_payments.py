"""The checks pay makes on what the caller keys in, and the emulated connector's answers (calls/payments.py)."""

from __future__ import annotations

import pytest

from emulator.calls.payments import CARD_STEPS, Payment, card_type, luhn_ok, routing_ok


def payment(**changes) -> Payment:
    settings = dict(
        key="pay-1",
        method="credit-card",
        transaction_type="charge",
        steps=CARD_STEPS,
        connector="Default",
        max_attempts=3,
        timeout_ms=5000,
        inter_digit_timeout_ms=5000,
        voice="female",
        language=None,
        prompts={},
    )
    return Payment(**{**settings, **changes})


@pytest.mark.parametrize(
    ("number", "kind"),
    [("4111111111111111", "visa"), ("5555555555554444", "mastercard"), ("378282246310005", "amex"),
     ("6011111111111117", "discover"), ("3530111333300000", "jcb"), ("30569309025904", "diners-club")],
)  # fmt: skip
def test_processors_test_cards_pass_luhn_and_are_typed(number, kind):
    assert luhn_ok(number) and card_type(number) == kind


def test_luhn_and_routing_numbers_reject_a_changed_digit():
    assert not luhn_ok("4111111111111112")
    assert routing_ok("011000015") and not routing_ok("011000016") and not routing_ok("01100001")


def test_each_step_checks_its_digits():
    pay = payment(valid_card_types=("mastercard",), min_postal_code_length=5)
    today = (2026, 12)
    assert pay.check("payment-card-number", "4111111111111111", today) == "invalid-card-type"
    assert pay.check("payment-card-number", "1234", today) == "invalid-card-number"
    assert pay.check("expiration-date", "1126", today) == "invalid-date"  # November 2026 is over
    assert pay.check("expiration-date", "1226", today) is None and pay.check("expiration-date", "1326", today)
    pay.keyed["payment-card-number"] = "378282246310005"
    assert pay.check("security-code", "123", today) == "invalid-security-code"  # amex: four digits
    assert pay.check("postal-code", "6060", today) == "invalid-postal-code"


def test_prompts_match_the_attempt_and_error_and_what_is_shown_is_masked():
    entries = [{"text": "Again, please.", "attempt": "2 3", "error_type": "invalid-card-number"}, {"text": "Card?"}]
    pay = payment(prompts={"payment-card-number": entries})
    assert pay.prompt(None) == "Card?"
    pay.attempt = 2
    assert pay.prompt("invalid-card-number") == "Again, please."
    pay.keyed |= {"payment-card-number": "4000000000000002", "security-code": "123"}
    assert pay.masked() == {
        "payment_card_number": "************0002",
        "payment_card_type": "visa",
        "security_code": "***",
    }
    assert pay.decline() == ("card_declined", "The card was declined.")
