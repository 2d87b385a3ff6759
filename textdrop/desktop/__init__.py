"""The PySide6 tray app, organised by capability: tray and single instance (``app``), capture, clipboard,
notifications, drop window, result view, settings. Imports Qt; nothing below ``desktop`` does."""
