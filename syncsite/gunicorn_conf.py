"""gunicorn settings: `gunicorn -c python:syncsite.gunicorn_conf syncsite.wsgi:application`.

Options given on the command line (bind, workers, timeout…) override these. What this file adds:
the access log on stdout and, before anything is logged, the masking of secrets in every log line
(`syncsite.logmask`): the MoySklad webhook's token is a path segment, so without it every access
log line of a webhook call would carry the token.
"""
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "syncsite.settings")

from syncsite import logmask  # noqa: E402

logmask.install()  # the master; workers inherit it when forked and install it again with Django

# One worker process per core, four threads each: the threads overlap the database round trips
# (a webhook's INSERT, an API call's queries) while few processes keep their caches warm and few
# wake for each new connection. Measured on 2 cores with MoySklad notifications at 300/s, against
# 4 processes x 2 threads: 0.98-1.04 ms of server CPU per request instead of 1.12-1.25 ms, and a
# p99 of 12.8 ms instead of 61 ms while a full catalog import shares the cores (make bench,
# webhook-ingest). WEB_CONCURRENCY sets the number of processes; the command line wins over both.
# Without it, at most 4 processes: each thread keeps a database connection (CONN_MAX_AGE), and a
# container sees all of its host's cores (PostgreSQL allows 100 connections by default).
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY") or min(os.cpu_count() or 2, 4))
threads = 4

accesslog = "-"
errorlog = "-"
# gunicorn's default line, with the request time in microseconds for latency figures.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(D)sus'


def post_fork(server, worker):
    logmask.install()
