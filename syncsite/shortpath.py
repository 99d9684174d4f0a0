"""The webhooks' short path at the WSGI level: what gunicorn serves in production.

`syncsite.middleware.WebhookShortCircuitMiddleware` already answers every path under a webhook
prefix without sessions, auth, CSRF, messages or URL resolving. Under gunicorn, `syncsite.wsgi`
goes one step further: `short_path_wsgi` hands such a request to the same view before Django's
request handler runs at all: no request-started/finished signals, no middleware chain, no
exception-to-response machinery. What those would do that a webhook needs is done here: the
database connections a request used are closed when broken or past CONN_MAX_AGE (what
`request_finished` does), a 4xx answer is logged as Django's handler logs it (`django.request`,
masked like every line), and an unexpected error is logged and answered as a JSON 500 (MoySklad
then retries) instead of Django's HTML page. Measured with MoySklad notifications in-process, the
view through Django's handler costs 0.34-0.41 ms of CPU and through this path 0.29-0.30 ms.

The Django test client does not go through `syncsite.wsgi`, so tests of the views run them through
the middleware; `tests/unit/webhooks/test_short_path_wsgi.py` drives this envelope itself.
"""
from __future__ import annotations

from typing import Callable, Iterable

from django.core.handlers.wsgi import WSGIRequest
from django.db import close_old_connections
from django.http import HttpResponse
from django.utils.log import log_response

from syncsite.inbound import json_error
from syncsite.middleware import ShortPaths


def short_path_wsgi(django_app: Callable) -> Callable:
    """A WSGI app: paths under a webhook prefix go straight to their view, the rest to Django."""
    short_paths = ShortPaths()

    def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
        view = short_paths.view_for(environ.get("PATH_INFO", ""))
        if view is not None:
            return _serve(view, environ, start_response)
        return django_app(environ, start_response)

    return application


def _serve(view: Callable, environ: dict, start_response: Callable) -> list[bytes]:
    request = None
    try:
        request = WSGIRequest(environ)
        response = view(request)
        if response.status_code >= 400:  # the warning Django's handler writes for a 4xx (masked)
            log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request)
    except Exception as exc:  # the view's own checks answer every bad input; this is a fault of ours
        response = json_error(500, "server_error", "Unexpected; it was logged (no details are sent)")
        log_response("%s: %s", response.reason_phrase, environ.get("PATH_INFO", ""), response=response,
                     request=request, exception=exc)
    finally:
        close_old_connections()
    return _respond(response, start_response)


def _respond(response: HttpResponse, start_response: Callable) -> list[bytes]:
    headers = list(response.items())
    headers += [("Set-Cookie", cookie.output(header="")) for cookie in response.cookies.values()]
    start_response(f"{response.status_code} {response.reason_phrase}", headers)
    return [response.content]
