"""Small pieces the apps' admin modules share: read-only admins/inlines and change-page links.

Read-only is the default for anything an upstream owns: an edit here would be overwritten by the
next sync, so the admin shows it (view permission) and never offers a form for it.
"""
from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import models
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _
from django.utils.html import format_html
from django.utils.text import Truncator


class ReadOnlyAdminMixin:
    """View-only ModelAdmin: no add, change or delete (upstream-owned rows)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyTabularInline(ReadOnlyAdminMixin, admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False


def admin_url(obj: models.Model) -> str | None:
    try:
        return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    except NoReverseMatch:
        return None


def admin_link(obj: models.Model | None, text: str | None = None) -> str:
    """A link to the object's admin change page (plain text if the model is not registered)."""
    if obj is None:
        return "—"
    label = text if text is not None else str(obj)
    url = admin_url(obj)
    return format_html('<a href="{}">{}</a>', url, label) if url else label


def short(text: str, length: int = 80) -> str:
    return Truncator(text or "").chars(length)


class BindingAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only list of bindings (the sync owns them); subclasses name their local FK."""

    local_field = ""
    list_filter = ("system",)
    list_per_page = 100

    def get_list_display(self, request: HttpRequest) -> tuple:
        return ("__str__", "local_display", "external_code", "external_updated_at", "synced_at")

    def get_list_select_related(self, request: HttpRequest) -> tuple:
        return (self.local_field,)

    @admin.display(description=_("local row"))
    def local_display(self, binding: Any) -> str:
        return admin_link(getattr(binding, self.local_field))
