"""The embedded engine: RapidOCR (PP-OCR ONNX from its wheel), language packs, and the layout step
(layout regions → reading order → paragraphs, tables, headings → Markdown)."""
