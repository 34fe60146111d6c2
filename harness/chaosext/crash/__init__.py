"""Chaos Toolkit activities of the crash-point sweep."""
