"""``restate``: a command-line client for Restate servers (ours and the real one).

It speaks only to the admin and ingress APIs, with the real ``restate`` CLI's
command tree, flags and environment variables.
"""

__version__ = "0.1.0"
