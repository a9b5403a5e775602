"""Credential lookup: each source, precedence, help messages, file permissions, no leaks."""

from __future__ import annotations

import logging
import traceback
import warnings
from pathlib import Path

import pytest

from lstfill.download.credentials import (
    EarthdataCredentials,
    MissingCredentials,
    S3Credentials,
    SecretsFileError,
    SecretsFileWarning,
    SentinelHubCredentials,
    earthdata_credentials,
    netrc_credentials,
    read_secrets,
    redact,
    s3_credentials,
    secrets_path,
    sentinelhub_credentials,
)
from lstfill.errors import LstfillError

PASSWORD = "hunter2-Pa55!"


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    """Write `text` to `path` with permissions `mode`."""
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.fixture
def home(no_credentials: Path) -> Path:
    """An empty home, the working directory `tmp_path` and no credential variables (conftest's
    `no_credentials`), so no real ~/.netrc or config/secrets.ini leaks in."""
    return no_credentials / "home"


@pytest.fixture
def env(home: Path) -> dict[str, str]:
    """A process environment with no credentials in it."""
    return {"HOME": str(home)}


@pytest.fixture
def secrets(tmp_path: Path) -> Path:
    """A secrets file with every section."""
    return write(
        tmp_path / "secrets.ini",
        "[earthdata]\nusername = file-user\npassword = file-pass\n"
        "[s3]\naccess_key = file-ak\nsecret_key = file-sk\n"
        "host_base = s3.example.org\nhost_bucket = bucket.example.org\n"
        "[sentinelhub]\nclient_id = file-id\nclient_secret = file-secret\n",
    )


@pytest.fixture
def netrc_file(tmp_path: Path) -> Path:
    """A netrc file with an Earthdata entry and another host's entry."""
    return write(
        tmp_path / "netrc",
        "machine urs.earthdata.nasa.gov login netrc-user password netrc-pass\n"
        "machine e4ftl01.cr.usgs.gov login modis-user password modis-pass\n",
    )


# --- Earthdata: each source and precedence ---------------------------------------------------


def test_earthdata_env_token_beats_everything(env, secrets, netrc_file):
    env |= {"EARTHDATA_TOKEN": "tok", "EARTHDATA_USERNAME": "u", "EARTHDATA_PASSWORD": "p"}
    creds = earthdata_credentials(secrets, env=env, netrc_file=netrc_file)
    assert creds == EarthdataCredentials(token="tok", origin="environment (EARTHDATA_TOKEN)")


def test_earthdata_env_pair_beats_file(env, secrets, netrc_file):
    env |= {"EARTHDATA_USERNAME": "u", "EARTHDATA_PASSWORD": "p"}
    creds = earthdata_credentials(secrets, env=env, netrc_file=netrc_file)
    assert (creds.username, creds.password, creds.token) == ("u", "p", None)
    assert creds.origin == "environment (EARTHDATA_USERNAME, EARTHDATA_PASSWORD)"


def test_earthdata_file_beats_netrc(env, secrets, netrc_file):
    creds = earthdata_credentials(secrets, env=env, netrc_file=netrc_file)
    assert (creds.username, creds.password) == ("file-user", "file-pass")
    assert creds.origin == f"secrets file {secrets.as_posix()} [earthdata]"


def test_earthdata_file_token_beats_file_pair(env, tmp_path):
    path = write(tmp_path / "s.ini", "[earthdata]\ntoken = ftok\nusername = u\npassword = p\n")
    creds = earthdata_credentials(path, env=env)
    assert (creds.token, creds.username, creds.password) == ("ftok", None, None)


def test_earthdata_from_netrc(env, netrc_file, tmp_path):
    empty = write(tmp_path / "empty.ini", "[s3]\naccess_key = a\nsecret_key = b\n")
    creds = earthdata_credentials(empty, env=env, netrc_file=netrc_file)
    assert (creds.username, creds.password) == ("netrc-user", "netrc-pass")
    assert creds.origin == f"{netrc_file.as_posix()} (urs.earthdata.nasa.gov)"


def test_earthdata_netrc_from_env_and_home(env, home, netrc_file):
    assert earthdata_credentials(env=env | {"NETRC": str(netrc_file)}).username == "netrc-user"
    write(home / ".netrc", "machine urs.earthdata.nasa.gov login home-user password hp\n")
    creds = earthdata_credentials(env=env)
    assert (creds.username, creds.password) == ("home-user", "hp")
    assert creds.origin == "~/.netrc (urs.earthdata.nasa.gov)"


def test_earthdata_secrets_from_lstfill_secrets_and_default(env, secrets, tmp_path):
    creds = earthdata_credentials(env=env | {"LSTFILL_SECRETS": str(secrets)})
    assert creds.username == "file-user"
    (tmp_path / "config").mkdir()
    write(tmp_path / "config" / "secrets.ini", "[earthdata]\ntoken = default-token\n")
    creds = earthdata_credentials(env=env)
    assert creds.token == "default-token"
    assert creds.origin == "secrets file config/secrets.ini [earthdata]"


def test_unparsable_netrc_is_skipped_with_warning(env, tmp_path):
    # the stdlib parser's own message would quote the bad token: the password
    bad = write(tmp_path / "netrc", f"{PASSWORD} machine urs.earthdata.nasa.gov login u\n")
    with (
        pytest.warns(SecretsFileWarning, match="netrc") as caught,
        pytest.raises(MissingCredentials),
    ):
        earthdata_credentials(env=env, netrc_file=bad)
    assert str(bad) in str(caught[0].message)
    assert PASSWORD not in str(caught[0].message)


# --- the secrets file -------------------------------------------------------------------------


def test_secrets_path_order(env, secrets, tmp_path):
    assert secrets_path(secrets, env={"LSTFILL_SECRETS": "/nope"}) == secrets
    assert secrets_path(env={"LSTFILL_SECRETS": str(secrets)}) == secrets
    assert secrets_path(env=env) is None
    (tmp_path / "config").mkdir()
    write(tmp_path / "config" / "secrets.ini", "")
    assert secrets_path(env=env) == Path("config/secrets.ini")


def test_lstfill_secrets_missing_file_is_named(env, tmp_path):
    missing = tmp_path / "gone.ini"
    with pytest.raises(MissingCredentials, match="LSTFILL_SECRETS") as err:
        earthdata_credentials(env=env | {"LSTFILL_SECRETS": str(missing)})
    assert missing.as_posix() in str(err.value)
    with pytest.raises(MissingCredentials, match="given as the secrets file"):
        secrets_path(missing)


def test_world_readable_secrets_warn(secrets, caplog):
    secrets.chmod(0o644)
    with pytest.warns(SecretsFileWarning, match=f"chmod 600 {secrets}"):
        read_secrets(secrets)
    assert any(r.levelno == logging.WARNING and "chmod 600" in r.message for r in caplog.records)


def test_private_secrets_do_not_warn(secrets):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parser = read_secrets(secrets)
    assert parser["s3"]["host_base"] == "s3.example.org"


def test_percent_in_password_is_literal(env, tmp_path):
    path = write(tmp_path / "s.ini", "[earthdata]\nusername = u\npassword = 100%sure\n")
    assert earthdata_credentials(path, env=env).password == "100%sure"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (f"password = {PASSWORD}\n", "line 1"),
        (f"[earthdata]\nusername = u\n{PASSWORD}\n", "line 3"),
        (f"[earthdata]\npassword = {PASSWORD}\npassword = {PASSWORD}\n", "line 3"),
        (f"[earthdata]\npassword = {PASSWORD}\n[earthdata]\n", "line 3"),
    ],
)
def test_malformed_secrets_name_file_and_line_only(env, tmp_path, text, line):
    path = write(tmp_path / "bad.ini", text)
    with pytest.raises(SecretsFileError) as err:
        earthdata_credentials(path, env=env)
    message = str(err.value)
    assert str(path) in message and line in message
    assert isinstance(err.value, LstfillError)
    assert PASSWORD not in "".join(traceback.format_exception(err.value))


# --- help messages and half pairs ------------------------------------------------------------


def test_earthdata_missing_everything_says_how(env):
    with pytest.raises(MissingCredentials) as err:
        earthdata_credentials(env=env, purpose="the test")
    message = str(err.value)
    for needle in ("EARTHDATA_USERNAME", "EARTHDATA_TOKEN", "[earthdata]", ".netrc", "the test"):
        assert needle in message
    assert "LSTFILL_SECRETS" in message and "https://urs.earthdata.nasa.gov/" in message


def test_missing_message_names_the_secrets_file_read(env, tmp_path):
    path = write(tmp_path / "mine.ini", "[other]\nkey = value\n")
    with pytest.raises(MissingCredentials, match=f"to {path.as_posix()}"):
        earthdata_credentials(path, env=env)


def test_sentinelhub_missing_everything_says_how(env):
    with pytest.raises(MissingCredentials) as err:
        sentinelhub_credentials(env=env)
    message = str(err.value)
    for needle in ("SH_CLIENT_ID", "SH_CLIENT_SECRET", "[sentinelhub]", "shapps.dataspace"):
        assert needle in message


def test_s3_missing_everything_says_how(env):
    with pytest.raises(MissingCredentials, match=r"CDSE_S3_ACCESS_KEY.*\[s3\]"):
        s3_credentials(env=env)


@pytest.mark.parametrize(
    ("call", "given", "missing"),
    [
        (earthdata_credentials, {"EARTHDATA_USERNAME": "u"}, "EARTHDATA_PASSWORD"),
        (earthdata_credentials, {"EARTHDATA_PASSWORD": "p"}, "EARTHDATA_USERNAME"),
        (sentinelhub_credentials, {"SH_CLIENT_ID": "i"}, "SH_CLIENT_SECRET"),
        (s3_credentials, {"CDSE_S3_SECRET_KEY": "s"}, "CDSE_S3_ACCESS_KEY"),
    ],
)
def test_half_pair_in_env_names_missing(env, secrets, call, given, missing):
    with pytest.raises(MissingCredentials, match=f"{missing} is missing"):
        call(secrets, env=env | given)


@pytest.mark.parametrize(
    ("call", "section", "missing"),
    [
        (earthdata_credentials, "[earthdata]\nusername = u\n", "password"),
        (sentinelhub_credentials, "[sentinelhub]\nclient_secret = s\n", "client_id"),
        (s3_credentials, "[s3]\naccess_key = a\nsecret_key =\n", "secret_key"),
    ],
)
def test_half_pair_in_file_names_missing(env, tmp_path, call, section, missing):
    path = write(tmp_path / "half.ini", section)
    with pytest.raises(MissingCredentials, match=rf"\[.*\]: .* is set but {missing} is missing"):
        call(path, env=env)


def test_half_pair_in_netrc_names_missing(env, tmp_path):
    path = write(tmp_path / "netrc", "machine urs.earthdata.nasa.gov login only-login\n")
    with pytest.raises(MissingCredentials, match="password is missing"):
        earthdata_credentials(env=env, netrc_file=path)


# --- Sentinel Hub, S3, netrc ------------------------------------------------------------------


def test_sentinelhub_env_beats_file(env, secrets):
    creds = sentinelhub_credentials(
        secrets, env=env | {"SH_CLIENT_ID": "i", "SH_CLIENT_SECRET": "s"}
    )
    assert creds == SentinelHubCredentials("i", "s", "environment (SH_CLIENT_ID, SH_CLIENT_SECRET)")
    creds = sentinelhub_credentials(secrets, env=env)
    assert (creds.client_id, creds.client_secret) == ("file-id", "file-secret")
    assert creds.origin == f"secrets file {secrets.as_posix()} [sentinelhub]"


def test_s3_env_beats_file(env, secrets):
    keys = {"CDSE_S3_ACCESS_KEY": "ak", "CDSE_S3_SECRET_KEY": "sk"}
    creds = s3_credentials(secrets, env=env | keys)
    assert (creds.access_key, creds.secret_key) == ("ak", "sk")
    assert creds.host_base == creds.host_bucket == "eodata.dataspace.copernicus.eu"
    creds = s3_credentials(secrets, env=env)
    assert creds == S3Credentials(
        "file-ak",
        "file-sk",
        "s3.example.org",
        "bucket.example.org",
        f"secrets file {secrets.as_posix()} [s3]",
    )


def test_netrc_credentials_by_host(env, netrc_file):
    assert netrc_credentials("e4ftl01.cr.usgs.gov", netrc_file) == ("modis-user", "modis-pass")
    assert netrc_credentials("unknown.example.org", netrc_file, env) is None
    assert netrc_credentials("e4ftl01.cr.usgs.gov", env=env) is None
    assert netrc_credentials("e4ftl01.cr.usgs.gov", env=env | {"NETRC": str(netrc_file)}) == (
        "modis-user",
        "modis-pass",
    )


def test_netrc_named_but_missing_is_an_error(env, tmp_path):
    with pytest.raises(MissingCredentials, match="NETRC"):
        netrc_credentials("h", env=env | {"NETRC": str(tmp_path / "gone")})


# --- no leaks ---------------------------------------------------------------------------------


def test_no_secret_in_repr_str_or_logs(env, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    path = write(
        tmp_path / "s.ini",
        f"[earthdata]\nusername = u\npassword = {PASSWORD}\n"
        f"[sentinelhub]\nclient_id = i\nclient_secret = {PASSWORD}\n"
        f"[s3]\naccess_key = a\nsecret_key = {PASSWORD}\n",
        mode=0o644,
    )
    with pytest.warns(SecretsFileWarning):
        found = [
            earthdata_credentials(path, env=env),
            earthdata_credentials(env=env | {"EARTHDATA_TOKEN": PASSWORD}),
            sentinelhub_credentials(path, env=env),
            s3_credentials(path, env=env),
        ]
    assert found[0].password == found[1].token == found[2].client_secret == PASSWORD
    for creds in found:
        assert PASSWORD not in repr(creds) and PASSWORD not in str(creds)
    assert caplog.records and all(PASSWORD not in r.getMessage() for r in caplog.records)


def test_redact():
    text = f"login failed for u:{PASSWORD} (token abc, token abcdef)"
    assert redact(text, PASSWORD, None, "", "abc", "abcdef") == (
        "login failed for u:*** (token ***, token ***)"
    )
    assert redact("nothing here", None) == "nothing here"
