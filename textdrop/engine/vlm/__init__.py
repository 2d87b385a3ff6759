"""OCR vision-language models: the guarded base class (:mod:`.guards`), one module per runtime
(:mod:`.llama_cpp`, :mod:`.mlx_vlm`, :mod:`.openai_api`, each importing its runtime lazily) and one module
per model family under :mod:`.families`."""
