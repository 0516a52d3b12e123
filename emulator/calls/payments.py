"""What ``pay`` collects and checks, and how the emulated connector answers (pure; docs/pay.md).

A payment is a series of steps (card number, expiration date, security code, postal code; or routing and account
number for ACH), each the caller's keys up to ``#``, checked as a card processor's IVR checks them. The emulated
connector then answers as test card numbers do at payment processors: most succeed, a few decline
(``DECLINES``), so a scenario chooses the outcome by the keys its caller presses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CARD_STEPS = ("payment-card-number", "expiration-date", "security-code", "postal-code")
ACH_STEPS = ("bank-routing-number", "bank-account-number")

# The connector's answer to a card or account number, by its digits (or to a payment_token): (pay_error_code,
# payment_error). Anything else succeeds.
DECLINES = {
    "4000000000000002": ("card_declined", "The card was declined."),
    "4000000000009995": ("insufficient_funds", "The card has insufficient funds."),
    "4000000000000069": ("expired_card", "The card has expired."),
    "000111111116": ("account_closed", "The bank account is closed."),
    "tok_declined": ("card_declined", "The card was declined."),
}

# Card types by number prefix, longest prefixes first where they overlap.
_PREFIXES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("amex", ("34", "37")),
    ("diners-club", ("300", "301", "302", "303", "304", "305", "36", "38")),
    ("enroute", ("2014", "2149")),
    ("discover", ("6011", "644", "645", "646", "647", "648", "649", "65")),
    ("jcb", ("35",)),
    ("mastercard", ("51", "52", "53", "54", "55", "22", "23", "24", "25", "26", "27")),
    ("maestro", ("50", "56", "57", "58", "6")),
    ("visa", ("4",)),
)


def card_type(number: str) -> str | None:
    for kind, prefixes in _PREFIXES:
        if number.startswith(prefixes):
            return kind
    return None


def luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def routing_ok(number: str) -> bool:
    """An ABA routing number: nine digits whose weighted sum (3, 7, 1, ...) is a multiple of ten."""
    if len(number) != 9:
        return False
    return sum(int(d) * w for d, w in zip(number, (3, 7, 1) * 3, strict=True)) % 10 == 0


@dataclass(slots=True)
class Payment:
    """One ``pay`` on a call: its settings, the step it is at, what was keyed so far."""

    key: str  # pay-N: the gathers of its steps are pay-N-<step>-<attempt>
    method: str  # credit-card or ach-debit
    transaction_type: str  # charge or tokenize
    steps: tuple[str, ...]
    connector: str
    max_attempts: int
    timeout_ms: int
    inter_digit_timeout_ms: int
    voice: str
    language: str | None
    prompts: dict[str, object]
    valid_card_types: tuple[str, ...] = ()
    min_postal_code_length: int = 1
    postal_code: str | None = None  # given in the command, not asked
    payment_token: str | None = None
    index: int = 0  # the step asked now
    attempt: int = 1
    keyed: dict[str, str] = field(default_factory=dict)  # step -> the digits accepted for it

    @property
    def step(self) -> str:
        return self.steps[self.index]

    @property
    def card_type(self) -> str | None:
        number = self.keyed.get("payment-card-number")
        return card_type(number) if number else None

    def check(self, step: str, digits: str, year_month: tuple[int, int]) -> str | None:
        """The error_type of ``digits`` for ``step`` (None: accepted). ``year_month``: today, for expiry."""
        if step == "payment-card-number":
            if not 12 <= len(digits) <= 19 or not luhn_ok(digits):
                return "invalid-card-number"
            if self.valid_card_types and card_type(digits) not in self.valid_card_types:
                return "invalid-card-type"
        elif step == "expiration-date":
            if len(digits) != 4 or not 1 <= int(digits[:2]) <= 12:
                return "invalid-date"
            if (2000 + int(digits[2:]), int(digits[:2])) < year_month:
                return "invalid-date"
        elif step == "security-code":
            if len(digits) != (4 if self.card_type == "amex" else 3):
                return "invalid-security-code"
        elif step == "postal-code":
            if not self.min_postal_code_length <= len(digits) <= max(10, self.min_postal_code_length):
                return "invalid-postal-code"
        elif step == "bank-routing-number":
            if not routing_ok(digits):
                return "invalid-bank-routing-number"
        elif step == "bank-account-number" and not 4 <= len(digits) <= 17:
            return "invalid-bank-account-number"
        return None

    def prompt(self, error_type: str | None) -> str:
        """What the step says at this attempt: the command's prompt for it (the first of a list that matches the
        attempt, card type and error), else the emulator's own sentence."""
        given = self.prompts.get(self.step)
        if isinstance(given, str):
            return given
        if isinstance(given, list):
            for entry in given:
                if self._matches(entry, error_type):
                    return str(entry["text"])
        return DEFAULT_PROMPTS[self.step]

    def _matches(self, entry: dict[str, object], error_type: str | None) -> bool:
        attempts = str(entry.get("attempt", "")).split()
        return (
            (not attempts or str(self.attempt) in attempts)
            and entry.get("card_type") in (None, self.card_type)
            and entry.get("error_type") in (None, error_type)
        )

    def masked(self) -> dict[str, str]:
        """What the webhooks show of what was keyed: card and account numbers masked, the security code hidden."""
        shown: dict[str, str] = {}
        for step, digits in self.keyed.items():
            if step == "payment-card-number":
                shown["payment_card_number"] = "*" * (len(digits) - 4) + digits[-4:]
                kind = card_type(digits)
                if kind is not None:
                    shown["payment_card_type"] = kind
            elif step == "expiration-date":
                shown["expiration_date"] = digits
            elif step == "security-code":
                shown["security_code"] = "*" * len(digits)
            elif step == "postal-code":
                shown["payment_card_postal_code"] = digits
            elif step == "bank-routing-number":
                shown["bank_routing_number"] = digits
            elif step == "bank-account-number":
                shown["bank_account_number"] = "*" * (len(digits) - 2) + digits[-2:]
        if self.postal_code is not None:
            shown["payment_card_postal_code"] = self.postal_code
        return shown

    def decline(self) -> tuple[str, str] | None:
        """The connector's answer: None when it accepts, else (pay_error_code, payment_error)."""
        key = self.payment_token or self.keyed.get("payment-card-number") or self.keyed.get("bank-account-number")
        return DECLINES.get(key or "")


DEFAULT_PROMPTS = {
    "payment-card-number": "Please enter your card number, followed by the pound key.",
    "expiration-date": "Please enter the expiration date, two digits for the month and two for the year.",
    "security-code": "Please enter the security code.",
    "postal-code": "Please enter the billing postal code, followed by the pound key.",
    "bank-routing-number": "Please enter the bank routing number, followed by the pound key.",
    "bank-account-number": "Please enter the bank account number, followed by the pound key.",
}
