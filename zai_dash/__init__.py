"""zai-dash: a live terminal dashboard for the Z.ai GLM Coding Plan."""

__version__ = "0.1.0"
