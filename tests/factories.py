import factory
from django.contrib.auth import get_user_model

from obligations import models as m
from obligations import services


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.test")
    is_staff = True
    password = factory.django.Password("pw-for-tests-only")


class OrganisationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.Organisation

    name = factory.Sequence(lambda n: f"Organisation {n}")


class ProviderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.Provider

    organisation = factory.SubFactory(OrganisationFactory)
    name = factory.Sequence(lambda n: f"Provider {n}")


class ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.Service
        skip_postgeneration_save = True

    provider = factory.SubFactory(ProviderFactory)
    name = factory.Sequence(lambda n: f"Service {n}")
    user_to_user = True
    uk_monthly_users = 100_000
    children_likely_to_access = False

    @factory.post_generation
    def categories(self, create, extracted, **kwargs):  # type: ignore[no-untyped-def]
        if create and extracted:
            self.categories.set(m.RegisterCategory.objects.filter(code__in=extracted))

    @factory.post_generation
    def features(self, create, extracted, **kwargs):  # type: ignore[no-untyped-def]
        if create and extracted:
            self.features.set(m.Feature.objects.filter(code__in=extracted))


def member(organisation: m.Organisation, role: str = m.Role.COMPLIANCE, **kwargs):  # type: ignore[no-untyped-def]
    user = UserFactory(**kwargs)
    services.add_member(
        actor=services.get_system_user(), organisation=organisation, user=user, role=role
    )
    return user


def applied_service(**kwargs):  # type: ignore[no-untyped-def]
    """A service with the catalogue applied, as the admin leaves it after saving."""
    service = ServiceFactory(**kwargs)
    services.apply_catalogue(
        actor=services.get_system_user(), service=service, source=m.EventSource.ADMIN
    )
    return service
