"""pay: collect a card or bank account from the caller's keys and charge or tokenize it (pure; docs/pay.md).

Each step speaks its prompt and gathers the caller's keys up to ``#`` (the call's gather, ``GatherRequest``
keyed ``pay-N-...``); ``call.payment.progress`` says how each step went (completed; failed with its error_type,
asked again up to max_attempts). Then the emulated connector answers (``payments.DECLINES``):
``call.payment.completed`` with result success (a charge_id or token_id) or payment-connector-error, or
too-many-failed-attempts, or cancelled when the call hangs up first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulator.calls import events
from emulator.calls.actions.context import OK, CommandContext, clip_key, ensure_media, note_client_state
from emulator.calls.effects import ClipRequest, Effect, Emit, GatherRequest, Outcome, StartGather
from emulator.calls.models import Call
from emulator.calls.payments import ACH_STEPS, CARD_STEPS, Payment
from emulator.calls.store import CallStore
from emulator.errors import ValidationFailed
from emulator.media.gather import GatherRules

PREFIX = "pay-"  # the gathers of a payment's steps: reactions.gather_ended hands them here


def pay(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    if call.payment is not None:
        raise ValidationFailed.at("/payment_method", "Payment in progress", "The call is already collecting a payment.")
    amount = float(body.get("amount", 0))
    kind = body.get("transaction_type") or ("charge" if amount > 0 else "tokenize")
    if kind == "charge" and amount <= 0:
        raise ValidationFailed.at("/amount", "Missing required parameter", "A charge needs a positive amount.", "10004")
    token = body.get("payment_token")
    if token is not None and body.get("valid_card_types"):
        detail = "valid_card_types cannot be used with payment_token: no card is asked for."
        raise ValidationFailed.at("/valid_card_types", "Invalid parameters", detail)
    postal = body.get("postal_code", True)
    if isinstance(postal, str) and not postal.strip():
        raise ValidationFailed.at("/postal_code", "Invalid value", "postal_code cannot be blank.")
    ask_postal = postal is True or (isinstance(postal, str) and postal.lower() == "true")
    given_postal = postal if isinstance(postal, str) and postal.lower() not in ("true", "false") else None
    method = body.get("payment_method", "credit-card")
    if token is not None:
        steps: tuple[str, ...] = ()
    elif method == "ach-debit":
        steps = ACH_STEPS
    else:
        steps = tuple(step for step in CARD_STEPS if step != "postal-code" or ask_postal)
    note_client_state(call, body)
    payment = Payment(
        key=clip_key(call, "pay"),
        method=method,
        transaction_type=kind,
        steps=steps,
        connector=body.get("connector_name", "Default"),
        max_attempts=int(body.get("max_attempts", 3)),
        timeout_ms=int(body.get("timeout_millis", 5000)),
        inter_digit_timeout_ms=int(body.get("inter_digit_timeout_millis", 5000)),
        voice=body.get("voice", "female"),
        language=body.get("language"),
        prompts=dict(body.get("prompts") or {}),
        valid_card_types=tuple(body.get("valid_card_types") or ()),
        min_postal_code_length=int(body.get("min_postal_code_length", 1)),
        postal_code=given_postal,
        payment_token=token,
    )
    call.payment = payment
    effects: list[Effect] = [*ensure_media(call)]
    effects.extend(_ask(ctx, call, payment, None) if steps else _process(ctx, call, payment))
    return Outcome(OK, tuple(effects))


def _ask(ctx: CommandContext, call: Call, payment: Payment, error_type: str | None) -> tuple[Effect, ...]:
    key = f"{payment.key}-{payment.step}-{payment.attempt}"
    text = payment.prompt(error_type)
    prompt = ClipRequest(key, "gather", text=text, voice=payment.voice, language=payment.language, transcript=text)
    rules = GatherRules(
        minimum_digits=1,
        maximum_digits=19 if payment.step != "expiration-date" else 4,
        terminating_digit="#",
        valid_digits="0123456789#",
        timeout_ms=payment.timeout_ms + payment.inter_digit_timeout_ms * 20,
        initial_timeout_ms=payment.timeout_ms,
        inter_digit_timeout_ms=payment.inter_digit_timeout_ms,
    )
    return (StartGather(call, GatherRequest(key, rules, prompt)),)


def step_ended(ctx: CommandContext, call: Call, status: str, digits: str) -> Outcome:
    """A step's keys are in (reactions.gather_ended): accepted, asked again, or the payment is over."""
    payment = call.payment
    if payment is None:
        return Outcome(OK)
    if status in ("call_hangup", "cancelled") or not call.is_alive:
        return Outcome(OK, _completed(call, payment, "cancelled"))
    keyed = digits.rstrip("#")
    today = (int(ctx.timestamp[:4]), int(ctx.timestamp[5:7])) if ctx.timestamp[:4].isdigit() else (2000, 1)
    error_type = "timeout" if status == "timeout" or not keyed else payment.check(payment.step, keyed, today)
    step = payment.step
    if error_type is not None:
        failed = _progress(call, payment, step, "failed", error_type)
        if payment.attempt >= payment.max_attempts:
            return Outcome(OK, (failed, *_completed(call, payment, "too-many-failed-attempts")))
        payment.attempt += 1
        return Outcome(OK, (failed, *_ask(ctx, call, payment, error_type)))
    payment.keyed[step] = keyed
    done = _progress(call, payment, step, "completed", None)
    payment.index += 1
    payment.attempt = 1
    if payment.index < len(payment.steps):
        return Outcome(OK, (done, *_ask(ctx, call, payment, None)))
    return Outcome(OK, (done, *_process(ctx, call, payment)))


def _process(ctx: CommandContext, call: Call, payment: Payment) -> tuple[Effect, ...]:
    """The connector's turn: progress at payment-processing, then its answer."""
    processing = _progress(call, payment, "payment-processing", "processing", None)
    declined = payment.decline()
    if declined is not None:
        code, message = declined
        extra = {"pay_error_code": code, "payment_error": message, "connector_error": message}
        return (processing, *_completed(call, payment, "payment-connector-error", extra))
    ids = {"charge_id" if payment.transaction_type == "charge" else "token_id": f"emu_{ctx.ids.uuid4()[:18]}"}
    ids["payment_confirmation_code"] = ctx.ids.uuid4()[:8].upper()
    return (processing, *_completed(call, payment, "success", ids))


def _progress(call: Call, payment: Payment, step: str, status: str, error_type: str | None) -> Emit:
    fields = {"payment_step": step, "payment_status": status, "attempt": payment.attempt, **payment.masked()}
    if error_type is not None:
        fields["error_type"] = error_type
    return Emit(call, "call.payment.progress", events.payment(call, payment.method, payment.connector, fields))


def _completed(call: Call, payment: Payment, result: str, extra: Mapping[str, str] | None = None) -> tuple[Effect, ...]:
    call.payment = None
    fields = {"result": result, **payment.masked(), **(extra or {})}
    return (Emit(call, "call.payment.completed", events.payment(call, payment.method, payment.connector, fields)),)
