"""403 for a changelist action the user may not run, whatever the admin class says.

Django's admin lists an action for anyone who may see the list unless the action names the
permissions it needs, and a POST for an action it does not list comes back as the same page with
"no action selected". A read-only manager must get neither: an action posted to a model's list
needs the change permission on that model (delete_selected keeps Django's own delete check; an
action that only reads, like a CSV export, declares allowed_permissions = ("view",) and needs the
view permission), and answers 403 without it. Superusers have every permission."""
from __future__ import annotations

from typing import Callable

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve


class AdminActionPermissionMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST" and request.path_info.startswith("/admin/"):
            self._check(request)
        return self.get_response(request)

    def _check(self, request: HttpRequest) -> None:
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return
        model_admin = getattr(match.func, "model_admin", None)
        if model_admin is None or not (match.url_name or "").endswith("_changelist"):
            return
        action = request.POST.get("action")
        if not action or "index" not in request.POST:
            return
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not user.is_staff:
            return  # the admin sends them to the login page
        if action == "delete_selected":
            return
        opts = model_admin.model._meta
        found = model_admin.get_actions(request).get(action)
        if found and tuple(getattr(found[0], "allowed_permissions", ())) == ("view",):
            # a read (an export): seeing the list is enough
            if user.has_perm(f"{opts.app_label}.view_{opts.model_name}"):
                return
            raise PermissionDenied("this action needs the view permission")
        if not user.has_perm(f"{opts.app_label}.change_{opts.model_name}"):
            raise PermissionDenied("this action needs the change permission")
