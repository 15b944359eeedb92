"""The atomic statements, one module per aggregate, each written once (DESIGN §2).

A conditional ``UPDATE … RETURNING`` is where concurrency is decided: of any number of
callers on any number of server instances, the database lets exactly as many win as the
condition allows. Services call these; they never spell such a statement themselves.
Nothing here commits: the caller owns the transaction.
"""
