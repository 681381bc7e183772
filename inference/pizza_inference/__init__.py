"""Pizza inference plane: model servers (GPU primary, CPU fallback) and the router."""

CLASSES: tuple[str, ...] = ("basic", "burnt", "combined", "mixed", "progression", "segment")
"""The six pizza classes, in the order every model's output uses."""
