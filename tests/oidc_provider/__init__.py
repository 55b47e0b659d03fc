"""A real OpenID Connect provider for the single sign-on tests: a throwaway Django project
(django-oauth-toolkit with OIDC on, RS256), its own SQLite database, run as its own process.
Start it with `server.running_provider()`, or `python -m tests.servers oidc -- <command>`."""
