"""`make bench`: SyncSite's performance figures (the "Figures" sections of the issues).

    python -m bench                      # every scenario, SQLite and (if reachable) PostgreSQL
    python -m bench --quick              # small sizes: a smoke run in about a minute
    python -m bench --only delta --db sqlite
    python -m bench --list

Each scenario lives in its own module under bench/scenarios/ and is found by name. A measured
sync runs in a child process (`python -m bench.child`), so peak memory and CPU are the
importer's own; the upstream emulators run in another process (`python -m
integrations.sandbox.server`), so they never share the importer's GIL. Every scenario gets a
fresh database. The table is printed and written to bench/results.json (see harness.py).
"""
