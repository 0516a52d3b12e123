"""``telnyx-emulator load``: ring the app with many simulated calls and measure how its conversations went.

``plan`` (when each call starts, which scenario it plays) and ``stats`` (percentiles, errors, SLOs) are pure;
``driver`` runs a plan against an emulator over its control plane; ``command`` is the CLI; ``report`` draws
the HTML report. docs/load.md is the user's guide.
"""
