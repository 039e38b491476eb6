"""Partitions spread over worker processes on one machine.

A supervisor (``supervisor``) places the partitions into the workers' stores, starts
one worker process per share (``worker``), restarts one that dies and stops them on
SIGTERM. Workers, and the supervisor's admin API, hand commands to partitions of
other workers over the fabric (``fabric``, ``link``): framed msgpack messages over
Unix sockets. See docs/workers.md.
"""
