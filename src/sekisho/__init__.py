"""sekisho: just-in-time production access."""

__version__ = "0.1.0"
