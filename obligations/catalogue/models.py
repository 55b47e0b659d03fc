"""The loaded catalogue: versions, duties with their commencement, features, register
categories, exemptions, and the Codes' harms, risk factors and measures."""

from __future__ import annotations

from django.db import models


class DutyScope(models.TextChoices):
    SERVICE = "service", "Each service"
    PROVIDER = "provider", "The provider, for all its services"


class CatalogueVersion(models.Model):
    version = models.CharField(max_length=40, unique=True)
    published = models.DateField()
    sha256 = models.CharField(max_length=64)
    loaded_at = models.DateTimeField(auto_now_add=True)
    summary = models.JSONField(default=dict, help_text="What this version added, changed, retired.")
    parameters = models.JSONField(
        default=dict, help_text="The figures the Act's money rules use, with their sources."
    )
    notice_powers = models.JSONField(
        default=list, help_text="Ofcom's notice powers, as rules on a service's profile."
    )

    class Meta:
        ordering = ["-loaded_at"]

    def __str__(self) -> str:
        return self.version


class Feature(models.Model):
    """A service feature from the catalogue's vocabulary (e.g. e2ee_messaging)."""

    code = models.SlugField(max_length=60, unique=True)
    label = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    implies = models.JSONField(default=list, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["label"]

    def __str__(self) -> str:
        return self.label


class RegisterCategory(models.Model):
    """A part of Ofcom's register of categorised services (s.95): 1, 2A, 2B."""

    code = models.CharField(max_length=10, unique=True)
    label = models.CharField(max_length=120)
    threshold = models.TextField(help_text="The threshold conditions, in words.")
    likely_if = models.JSONField(help_text="Rule that computes the likely category.")
    supersedes = models.JSONField(default=list, blank=True)
    source = models.CharField(max_length=200)
    source_url = models.URLField()

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "register categories"

    def __str__(self) -> str:
        return self.label


class Exemption(models.Model):
    """A Schedule 1 exemption a service can claim."""

    code = models.SlugField(max_length=60, unique=True)
    label = models.CharField(max_length=200)
    paragraph = models.CharField(max_length=40)
    source_url = models.URLField()
    verified = models.BooleanField(default=True)
    unverified_note = models.TextField(blank=True)

    class Meta:
        ordering = ["paragraph"]

    def __str__(self) -> str:
        return f"{self.label} ({self.paragraph})"


class Duty(models.Model):
    """One duty of the Act, as the catalogue states it."""

    code = models.CharField(max_length=60, unique=True)
    title = models.CharField(max_length=200)
    section = models.CharField(max_length=60, help_text="As the Act numbers it, e.g. s.10(9).")
    part = models.CharField(max_length=10, help_text="Part of the Act, e.g. 3.")
    instrument = models.CharField(max_length=200)
    summary = models.TextField()
    # Commencement, as the catalogue cites it (catalogue.commencement reads these): whether the
    # duty is in force on a day follows from them, and is never stored.
    in_force_from = models.DateField(
        null=True,
        blank=True,
        help_text="The day the provision came into force; empty: not (known to be).",
    )
    commencement = models.JSONField(
        default=dict, help_text="The instrument that commenced it, its link, and what was read."
    )
    applies_from = models.DateField(
        null=True,
        blank=True,
        help_text="Where the duty bites later than its commencement (s.51), the day it does.",
    )
    applies_note = models.TextField(blank=True)
    effective_from = models.DateField(
        null=True,
        blank=True,
        help_text="The day the duty bites: applies_from, else in_force_from; empty: not yet.",
    )
    scope = models.CharField(max_length=10, choices=DutyScope.choices, default=DutyScope.SERVICE)
    assessment_kind = models.CharField(
        max_length=20,
        blank=True,
        help_text="A risk assessment duty: the kind of assessment its cycles need.",
    )
    applies = models.JSONField(help_text="Declarative applicability rule.")
    deadline = models.JSONField(help_text="Deadline rule.")
    evidence = models.TextField(blank=True, help_text="The evidence a team keeps.")
    source_url = models.URLField()
    verified = models.BooleanField(default=True)
    unverified_note = models.TextField(blank=True)
    catalogue_version = models.ForeignKey(
        CatalogueVersion, on_delete=models.PROTECT, related_name="duties"
    )
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "duties"
        indexes = [models.Index(fields=["section"]), models.Index(fields=["verified"])]

    def __str__(self) -> str:
        return f"{self.code} ({self.section})"


class CatalogueEntry(models.Model):
    """What every catalogue-loaded vocabulary row carries: a code, its source, and whether the
    fact was confirmed; retired, never deleted."""

    code = models.CharField(max_length=60, unique=True)
    source_url = models.URLField(max_length=300)
    verified = models.BooleanField(default=True)
    unverified_note = models.TextField(blank=True)
    catalogue_version = models.ForeignKey(
        CatalogueVersion, on_delete=models.PROTECT, related_name="+"
    )
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["code"]


class HarmKind(CatalogueEntry):
    """A kind of harm a risk assessment rates: priority illegal content (Ofcom's kinds), or
    content harmful to children (s.61 primary priority, s.62 priority, non-designated)."""

    label = models.CharField(max_length=200)
    family = models.CharField(max_length=20, help_text="illegal, children_ppc, children_pc, ...")
    group = models.CharField(
        max_length=60, help_text="Parts of one kind share a group (CSEA is rated in parts)."
    )
    assessments = models.JSONField(help_text="The kinds of assessment that rate it.")
    effective_from = models.DateField()
    effective_until = models.DateField(null=True, blank=True)
    assess_by = models.DateField(
        null=True, blank=True, help_text="When a service must first have assessed it."
    )
    source = models.CharField(max_length=300, blank=True)

    class Meta(CatalogueEntry.Meta):
        pass

    def __str__(self) -> str:
        return self.label


class RiskFactor(CatalogueEntry):
    """A risk factor from Ofcom's Risk Profiles (a service type, user base, functionality or
    business model) that an assessment can record the service as having."""

    label = models.CharField(max_length=200)
    group = models.CharField(max_length=60)
    assessments = models.JSONField()
    brought_in = models.JSONField(
        default=dict,
        blank=True,
        help_text="Features that pre-select it on some harm kinds' rows, and what those rows "
        "must then record (catalogue rule).",
    )

    class Meta(CatalogueEntry.Meta):
        ordering = ["group", "label"]

    def __str__(self) -> str:
        return self.label


class CodeMeasure(CatalogueEntry):
    """A measure of one of Ofcom's Codes of Practice (ICU, ICS, PCU, PCS). Taking the measures
    a Code recommends is the route to being treated as complying (s.49(1))."""

    code_family = models.CharField(max_length=3)
    area = models.CharField(max_length=100)
    summary = models.TextField()
    duties = models.ManyToManyField(Duty, related_name="measures")
    recommended_for = models.JSONField()
    status = models.CharField(max_length=10, help_text="in_force, laid or proposed")
    issued_on = models.DateField(
        null=True, blank=True, help_text="When Ofcom issued the code (or amendment) holding it."
    )
    effective_from = models.DateField(
        null=True,
        blank=True,
        help_text="In force from: 21 days after it was issued (s.43(4)(b)); empty until issued.",
    )
    basis = models.CharField(max_length=1, help_text="O: Ofcom page; S: secondary; U: unconfirmed")
    changed_in = models.ForeignKey(
        CatalogueVersion,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The catalogue version that last changed what it asks or whom it is for.",
    )

    class Meta(CatalogueEntry.Meta):
        indexes = [models.Index(fields=["code_family"])]

    def __str__(self) -> str:
        return f"{self.code}: {self.summary}"
