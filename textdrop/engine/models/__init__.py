"""Downloadable models: the curated catalogue (VLMs and language packs), downloads through
huggingface_hub, and memory checks."""
