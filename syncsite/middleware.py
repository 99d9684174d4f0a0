"""Machine-to-machine webhooks answered before the rest of the middleware stack.

A webhook POST needs none of what the stack does for people: no session is loaded, no user
authenticated, no CSRF cookie checked (the path token or signature is the authentication), no
messages, no clickjacking headers, and no URL resolving. This middleware sits first in
`MIDDLEWARE` and hands every path under a webhook prefix straight to its view, so the stack's
work is skipped and the view also owns every answer under its prefix: its own JSON 404 for an
unknown token or a malformed path, instead of Django's HTML 404 or an APPEND_SLASH redirect.
"""
from __future__ import annotations

from typing import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string

#: path prefix -> the view that answers every path under it (`prefix` itself and `prefix/...`)
SHORT_PATHS: dict[str, str] = {
    "/webhooks/moysklad": "integrations.moysklad.webhooks.moysklad_webhook",
}


class ShortPaths:
    """SHORT_PATHS with their views imported: which view, if any, owns a path."""

    def __init__(self):
        self.routes = [(prefix, prefix + "/", import_string(view)) for prefix, view in SHORT_PATHS.items()]

    def view_for(self, path: str) -> Callable[[HttpRequest], HttpResponse] | None:
        for prefix, under, view in self.routes:
            if path == prefix or path.startswith(under):
                return view
        return None


class WebhookShortCircuitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        self.short_paths = ShortPaths()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = self.short_paths.view_for(request.path_info)
        return view(request) if view is not None else self.get_response(request)
