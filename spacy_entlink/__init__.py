"""spaCy components for entity recognition, linking and relation extraction.

Nothing heavy is imported here: spaCy imports factory modules through entry points,
and `import spacy_entlink` must stay cheap (no torch, no transformers).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
