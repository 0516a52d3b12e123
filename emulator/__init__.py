"""Local emulator of Telnyx Call Control media streaming."""

__version__ = "0.1.0"
