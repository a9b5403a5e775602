"""Fixtures shared by the downloader tests."""

from pathlib import Path

import pytest
import responses

CREDENTIAL_VARS = (
    "EARTHDATA_TOKEN",
    "EARTHDATA_USERNAME",
    "EARTHDATA_PASSWORD",
    "SH_CLIENT_ID",
    "SH_CLIENT_SECRET",
    "CDSE_S3_ACCESS_KEY",
    "CDSE_S3_SECRET_KEY",
    "LSTFILL_SECRETS",
    "NETRC",
)


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No credential of the machine running the tests can leak in: the credential variables are
    unset, HOME is the empty ``tmp_path/home`` (no ~/.netrc) and the working directory is
    `tmp_path` (no config/secrets.ini). Returns the working directory."""
    for name in CREDENTIAL_VARS:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def rsps():
    """`responses` for the catalogue and login calls; local test servers pass through."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru("http://localhost")
        mock.add_passthru("http://127.0.0.1")
        yield mock
