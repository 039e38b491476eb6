"""The SQL text the CLI sends to ``POST /query``, built as the real CLI 1.7.12 builds it.

The statements keep the real CLI's wording and layout, so a server that answers the real
CLI answers ours, and the traffic of both can be compared line by line.
"""
