"""What is done with trained adapters: the library (library.py), weighted merges (merge.py), GGUF export
(export.py), generation on one loaded base (generate.py)."""
