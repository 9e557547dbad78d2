"""Podium package; see module headers for rules."""
