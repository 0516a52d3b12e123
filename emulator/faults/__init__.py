"""Faults on demand (docs/faults.md): rules that make the emulator misbehave the way Telnyx and networks can.

``rules`` is pure (the rules, what they match, when they fire, from a seeded random stream); the webhook
sender, the REST routes and the media streams ask it at the one place each fault can happen.
"""
