"""digest: a self-hosted newsletter digest sender for a blog's feed."""

__version__ = "0.1.0"
