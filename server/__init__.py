"""The Podium server: HTTP API, engine, stores and system tasks.

Rules: server/ is the only package that does IO (sockets, files, databases, threads).
It may import core/ and hotpath/; nothing else imports server/ except tests and bench.
"""
