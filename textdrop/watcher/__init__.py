"""The folder service: watchdog observers → settle → jobs → sidecars; knows nothing of Qt."""
