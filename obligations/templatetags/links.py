from django import template

from obligations.links import object_url

register = template.Library()


@register.filter
def url_of(pk: object, name: str) -> str:
    """`{{ row.id|url_of:"admin:obligations_obligation_change" }}`: {% url %} for an id in a
    loop, without reversing it each time."""
    return object_url(name, pk)
