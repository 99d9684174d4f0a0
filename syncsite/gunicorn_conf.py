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

accesslog = "-"
errorlog = "-"
# gunicorn's default line, with the request time in microseconds for latency figures.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(D)sus'


def post_fork(server, worker):
    logmask.install()
