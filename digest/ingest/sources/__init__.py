"""The source formats: one module each, taking bytes (or text) and returning entries.

Pure.  A new format is one file here and one line in ``digest.ingest``.
"""
