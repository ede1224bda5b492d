"""Queries: what interfaces read, as views; they never change anything."""
