"""The page of an operator action on one admin object: its form, a note, Confirm and Cancel."""

from django import forms
from django.contrib import admin
from django.db import models
from django.http import HttpRequest
from django.template.response import TemplateResponse


def action_page(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    original: models.Model,
    form: forms.Form,
    title: str,
    *,
    note: str = "",
) -> TemplateResponse:
    """`admin/backoffice/action_form.html` for `form`, in the admin of `original`."""
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "original": original,
        "title": f"{title}: {original}",
        "form": form,
        "note": note,
    }
    return TemplateResponse(request, "admin/backoffice/action_form.html", context)
