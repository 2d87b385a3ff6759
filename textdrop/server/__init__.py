"""``textdrop serve``: the HTTP API over the same engines and job queue as the CLI, the watcher and the tray.

Knows nothing of Qt. :mod:`~textdrop.server.options` (the ``[server]`` settings) imports nothing heavy;
FastAPI and uvicorn (the ``server`` extra) are imported only by :mod:`~textdrop.server.app` and when a
server is made (:func:`textdrop.server.run.make_server`).
"""
