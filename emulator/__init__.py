"""Local emulator of Telnyx Call Control media streaming."""

__version__ = "0.1.0"
PROG = "telnyx-emulator"  # the command, as its messages name it
