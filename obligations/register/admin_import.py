"""The admin page that imports an existing register from a spreadsheet (see importer.py)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from obligations.access.models import Organisation, Role
from obligations.access.selectors import can_edit, visible_organisations
from obligations.register.import_files import (
    COLUMN_LABELS,
    MAX_COLUMNS,
    MAX_ROWS,
    REQUIRED,
    ImportFileError,
    Table,
    read_table,
    too_large,
)
from obligations.register.importer import ImportReport, run_import


class ImportUploadHandler(TemporaryFileUploadHandler):
    """Receives an import to a temporary file and stops reading the request at the import's
    byte limit (the evidence handler allows far more): the rest of an oversized body is never
    read, so a multi-gigabyte upload cannot hold a worker for its whole transfer."""

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if start + len(raw_data) > settings.IMPORT_MAX_BYTES:
            self.request.import_too_large = True  # type: ignore[union-attr]
            raise StopUpload(connection_reset=True)
        return super().receive_data_chunk(raw_data, start)


class ImportRegisterForm(forms.Form):
    file = forms.FileField(
        help_text="A .csv file (UTF-8) or an .xlsx workbook (its first sheet), at most "
        f"{settings.IMPORT_MAX_BYTES:,} bytes, {MAX_ROWS:,} rows and "
        f"{MAX_COLUMNS} columns; the first row names the columns.",
        # Checked in clean_file, so that a file stopped at the size limit says so.
        required=False,
    )
    organisation = forms.ModelChoiceField(queryset=Organisation.objects.none(), empty_label=None)
    dry_run = forms.BooleanField(
        required=False,
        initial=True,
        label="Dry run: check the file and show what would change, writing nothing",
    )
    import_good_rows = forms.BooleanField(
        required=False,
        label="Import the good rows even if some rows are refused",
    )

    def __init__(
        self,
        *args: Any,
        organisations: QuerySet[Organisation],
        too_large: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.filename = ""
        self.too_large = too_large
        field = self.fields["organisation"]
        field.queryset = organisations  # type: ignore[attr-defined]
        if len(organisations) == 1:
            field.initial = organisations[0]
            field.widget = forms.HiddenInput()

    def clean_file(self) -> Table:
        uploaded: UploadedFile | None = self.cleaned_data["file"]
        try:
            if self.too_large:
                raise too_large()
            if uploaded is None:
                raise forms.ValidationError(self.fields["file"].error_messages["required"])
            self.filename = uploaded.name or ""
            # One byte past the limit is enough for read_table to refuse it.
            return read_table(self.filename, uploaded.read(settings.IMPORT_MAX_BYTES + 1))
        except ImportFileError as exc:
            raise forms.ValidationError(str(exc)) from None


class ImportRegisterAdminMixin(admin.ModelAdmin):
    """Adds "Import a register" to the obligations changelist, for users who can edit."""

    def get_urls(self) -> list[Any]:
        return [
            path(
                "import/",
                self.admin_site.admin_view(csrf_exempt(self.receive_import)),
                name=f"{self.opts.app_label}_{self.opts.model_name}_import",
            ),
            *super().get_urls(),
        ]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra = {**(extra_context or {}), "can_import": can_edit(request.user)}
        return super().changelist_view(request, extra)

    def receive_import(self, request: HttpRequest) -> HttpResponse:
        """The import's own upload handler has to be in place before anything reads the body,
        the CSRF check included; so that check runs here, after it."""
        request.upload_handlers = [ImportUploadHandler(request)]
        return csrf_protect(self.import_view)(request)

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not can_edit(request.user):
            raise PermissionDenied
        organisations = visible_organisations(request.user, (Role.ADMIN, Role.COMPLIANCE))
        posted = request.method == "POST"
        form = ImportRegisterForm(
            request.POST if posted else None,
            request.FILES if posted else None,
            organisations=organisations,
            too_large=getattr(request, "import_too_large", False),
        )
        report = None
        if posted and form.is_valid():
            assert isinstance(request.user, User)  # the admin serves signed-in staff only
            data = form.cleaned_data
            report = run_import(
                actor=request.user,
                organisation=data["organisation"],
                table=data["file"],
                filename=form.filename,
                dry_run=data["dry_run"],
                import_good_rows=data["import_good_rows"],
            )
            self.message_user(request, report.summary(), _level(report))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Import a register",
            "form": form,
            "report": report,
            "columns": COLUMN_LABELS,
            "required": [COLUMN_LABELS[name] for name in REQUIRED],
        }
        return TemplateResponse(request, "admin/obligations/obligation/import.html", context)


def _level(report: ImportReport) -> int:
    if report.refused and not report.written:
        return messages.ERROR
    if report.refused:
        return messages.WARNING
    return messages.SUCCESS if report.written else messages.INFO
