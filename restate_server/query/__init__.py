"""``POST /query``: SQL over the server's state, on Apache DataFusion (see docs/query.md).

Importing this package is cheap: DataFusion and pyarrow are imported by the query
thread on the first query (``service.QueryService``).
"""
