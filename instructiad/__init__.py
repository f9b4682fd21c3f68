"""InstructIAD: a versioned Hugging Face dataset built from the public IAD datasets on disk."""

__version__ = "0.1.0"
DATASET_VERSION = "0.1.0"
"""Default semver of the built dataset (``triad build --version`` overrides it)."""
HUB_REPO = "triad/instructiad"
"""The Hub dataset repo the card's load examples name (``triad build --repo`` overrides it)."""
