"""textdrop: a local OCR agent for the desktop."""

__version__ = "0.1.0"
