"""Podium's models and interfaces.

Rules: nothing in core/ does IO, awaits, reads a clock or imports trio, redis or asyncpg.
core/ is imported by hotpath/ and server/; it imports neither.
"""

__version__ = "0.1.0"
