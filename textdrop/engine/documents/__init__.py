"""Documents in and out: sources (images, multi-page TIFF, HEIC, PDFs and their text layers) and sidecars
(naming, front matter, atomic writes, searchable PDFs)."""
