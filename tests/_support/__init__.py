"""The test harness shared by every suite: free ports, server subprocesses and their ``READY <port>``
line, waiting with deadlines, Node peers and their ``node_modules`` folders, redis-server, and the rule
for a missing tool (a failure under ``CI=true``, a skip with the reason elsewhere).

Plain modules, no fixtures: the fixtures are declared once in ``tests/conftest.py``.
"""
