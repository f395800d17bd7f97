"""tests/hardening: the web fixtures come from the ``web_fixtures`` plugin (tests/conftest.py)."""
