"""Shared fakes for the tests: small files built in the test's own folder."""
