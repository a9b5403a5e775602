"""Credentials for the data services: environment, a secrets file, or ~/.netrc.

Each service looks in the environment first, then in the secrets file (``config/secrets.ini``
or the file named by ``LSTFILL_SECRETS``), then, for NASA Earthdata, in ~/.netrc. Messages and
logs name where a credential came from, never its value; a pair given by halves is an error
rather than a silent fall-through, so a typo does not end in a confusing login failure.

One module on purpose (about 400 lines): the lookup order, the help messages and the no-leak
rules are one policy for every service, and they read best side by side.
"""

from __future__ import annotations

import configparser
import logging
import netrc
import os
import stat
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lstfill.errors import LstfillError

__all__ = [
    "EARTHDATA_HOST",
    "EarthdataCredentials",
    "MissingCredentials",
    "S3Credentials",
    "SecretsFileError",
    "SecretsFileWarning",
    "SentinelHubCredentials",
    "earthdata_credentials",
    "netrc_credentials",
    "read_secrets",
    "redact",
    "s3_credentials",
    "secrets_path",
    "sentinelhub_credentials",
    "warn_if_exposed",
]

_logger = logging.getLogger(__name__)

SECRETS_ENV = "LSTFILL_SECRETS"
DEFAULT_SECRETS = Path("config") / "secrets.ini"
EARTHDATA_HOST = "urs.earthdata.nasa.gov"
CDSE_S3_HOST = "eodata.dataspace.copernicus.eu"
REDACTED = "***"
_SECRETS_HINT = f"{DEFAULT_SECRETS.as_posix()} (or the file named by {SECRETS_ENV})"


class MissingCredentials(LstfillError):
    """No credential for a service; the message names every way to provide one."""


class SecretsFileError(MissingCredentials):
    """A secrets or netrc file cannot be read or parsed; the message gives the file and line
    only, never the offending text (it may hold a secret)."""


class SecretsFileWarning(UserWarning):
    """A file holding secrets is readable or writable by other users."""


@dataclass(frozen=True)
class EarthdataCredentials:
    """NASA Earthdata Login: a bearer token, or a username and password. `origin` says where
    they came from (for messages; never the values)."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    origin: str = ""


@dataclass(frozen=True)
class SentinelHubCredentials:
    """An OAuth client of the Copernicus Data Space Sentinel Hub."""

    client_id: str
    client_secret: str = field(repr=False)
    origin: str = ""


@dataclass(frozen=True)
class S3Credentials:
    """Copernicus Data Space S3 keys (the seed's [s3] section)."""

    access_key: str
    secret_key: str = field(repr=False)
    host_base: str = "eodata.dataspace.copernicus.eu"
    host_bucket: str = "eodata.dataspace.copernicus.eu"
    origin: str = ""


# --- the secrets file -------------------------------------------------------------------------


def secrets_path(
    path: str | Path | None = None, *, env: Mapping[str, str] | None = None
) -> Path | None:
    """The secrets file to read: `path`, else $LSTFILL_SECRETS, else ./config/secrets.ini if it
    exists, else None. A file named explicitly (argument or environment) must exist."""
    env = _environ(env)
    if path is not None and str(path):
        return _must_exist(Path(path), "given as the secrets file")
    if env.get(SECRETS_ENV):
        return _must_exist(Path(env[SECRETS_ENV]), f"named by {SECRETS_ENV}")
    return DEFAULT_SECRETS if DEFAULT_SECRETS.is_file() else None


def read_secrets(path: str | Path) -> configparser.ConfigParser:
    """Parse the INI secrets file at `path`, warning when other users may read or change it.

    Interpolation is off so that a '%' in a password is taken literally.
    """
    path = Path(path)
    try:
        warn_if_exposed(path)
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise SecretsFileError(f"cannot read secrets file {path}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise SecretsFileError(f"cannot read secrets file {path}: not UTF-8 text") from None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as err:
        raise SecretsFileError(f"malformed secrets file {path}, {_parse_problem(err)}") from None
    return parser


def warn_if_exposed(path: Path) -> None:
    """Warn (and log) when `path` is readable or writable by group or others (POSIX only)."""
    if os.name != "posix":
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        message = (
            f"{path} holds secrets but other users may read or change it "
            f"(mode {mode:o}): run chmod 600 {path}"
        )
        _logger.warning(message)
        warnings.warn(message, SecretsFileWarning, stacklevel=3)


def _parse_problem(err: configparser.Error) -> str:
    """Where and what is wrong in a secrets file, without the offending line's text."""
    line = getattr(err, "lineno", None)
    if isinstance(err, configparser.MissingSectionHeaderError):
        return f"line {line}: a setting before the first [section] header"
    if isinstance(err, configparser.DuplicateSectionError):
        return f"line {line}: section [{err.section}] appears twice"
    if isinstance(err, configparser.DuplicateOptionError):
        return f"line {line}: a key appears twice in section [{err.section}]"
    if isinstance(err, configparser.ParsingError):
        lines = ", ".join(str(number) for number, _ in err.errors)
        return f"line {lines}: expected '[section]' or 'key = value'"
    return f"line {line or '?'}: cannot be parsed ({type(err).__name__})"


def _secrets_section(path: Path | None, name: str) -> tuple[Mapping[str, str], str]:
    """The `[name]` section of the secrets file (empty if none) and a label for messages."""
    if path is None:
        return {}, ""
    parser = read_secrets(path)
    label = f"secrets file {path.as_posix()} [{name}]"
    return (parser[name] if parser.has_section(name) else {}), label


def _secrets_where(path: Path | None) -> str:
    """The secrets file to name in help messages."""
    return path.as_posix() if path is not None else _SECRETS_HINT


# --- netrc ------------------------------------------------------------------------------------


def netrc_credentials(
    host: str, netrc_file: str | Path | None = None, env: Mapping[str, str] | None = None
) -> tuple[str, str] | None:
    """Login and password of `host` in the netrc file (`netrc_file`, $NETRC or ~/.netrc), or
    None when there is no file or entry."""
    found = _netrc_lookup(host, netrc_file, _environ(env))
    return None if found is None else (found[0], found[1])


def _netrc_lookup(
    host: str, netrc_file: str | Path | None, env: Mapping[str, str]
) -> tuple[str, str, str] | None:
    """(login, password, origin label) of `host`'s netrc entry, or None."""
    located = _locate_netrc(netrc_file, env)
    if located is None:
        return None
    path, label = located
    entry = _netrc_entry(path, host)
    if entry is None:
        return None
    where = f"{label} (machine {host})"
    pair = _pair({"login": entry[0] or "", "password": entry[2] or ""}, "login", "password", where)
    return None if pair is None else (pair[0], pair[1], f"{label} ({host})")


def _locate_netrc(netrc_file: str | Path | None, env: Mapping[str, str]) -> tuple[Path, str] | None:
    """The netrc file to read and its label: `netrc_file`, $NETRC, or ~/.netrc if it exists."""
    if netrc_file is not None and str(netrc_file):
        path = _must_exist(Path(netrc_file), "given as the netrc file")
        return path, path.as_posix()
    if env.get("NETRC"):
        path = _must_exist(Path(env["NETRC"]), "named by NETRC")
        return path, path.as_posix()
    default = Path(env.get("HOME") or Path.home()) / ".netrc"
    return (default, "~/.netrc") if default.is_file() else None


def _netrc_entry(path: Path, host: str) -> tuple[str, str | None, str] | None:
    """`host`'s (login, account, password) in the netrc at `path`; an unparsable file is skipped
    with a warning naming it (the parser's own message may quote a secret)."""
    try:
        warn_if_exposed(path)
        return netrc.netrc(str(path)).authenticators(host)
    except (netrc.NetrcParseError, OSError, UnicodeDecodeError) as err:
        line = getattr(err, "lineno", None)
        where = f", line {line}" if line else ""
        message = f"skipping netrc file {path}{where}: it cannot be read or parsed"
        _logger.warning(message)
        warnings.warn(message, SecretsFileWarning, stacklevel=4)
        return None


# --- the services -----------------------------------------------------------------------------


def earthdata_credentials(
    secrets: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    netrc_file: str | Path | None = None,
    *,
    purpose: str = "ECOSTRESS, MODIS and SRTM downloads",
) -> EarthdataCredentials:
    """NASA Earthdata Login credentials from, in order: $EARTHDATA_TOKEN,
    $EARTHDATA_USERNAME/$EARTHDATA_PASSWORD, the secrets file's [earthdata] section (token, or
    username and password), and the netrc entry for urs.earthdata.nasa.gov."""
    env = _environ(env)
    creds = _earthdata_from_env(env)
    path = None
    if creds is None:
        path = secrets_path(secrets, env=env)
        creds = _earthdata_from_secrets(path)
    if creds is None:
        found = _netrc_lookup(EARTHDATA_HOST, netrc_file, env)
        if found is not None:
            creds = EarthdataCredentials(username=found[0], password=found[1], origin=found[2])
    if creds is None:
        raise MissingCredentials(_earthdata_help(purpose, path, netrc_file, env))
    _logger.debug("NASA Earthdata credentials from %s", creds.origin)
    return creds


def _earthdata_from_env(env: Mapping[str, str]) -> EarthdataCredentials | None:
    """Earthdata credentials from environment variables, the token first."""
    if env.get("EARTHDATA_TOKEN"):
        return EarthdataCredentials(
            token=env["EARTHDATA_TOKEN"], origin="environment (EARTHDATA_TOKEN)"
        )
    names = ("EARTHDATA_USERNAME", "EARTHDATA_PASSWORD")
    pair = _pair(env, *names, "the environment")
    if pair is None:
        return None
    origin = f"environment ({names[0]}, {names[1]})"
    return EarthdataCredentials(username=pair[0], password=pair[1], origin=origin)


def _earthdata_from_secrets(path: Path | None) -> EarthdataCredentials | None:
    """Earthdata credentials from the secrets file's [earthdata] section, the token first."""
    section, label = _secrets_section(path, "earthdata")
    if section.get("token"):
        return EarthdataCredentials(token=section["token"], origin=label)
    pair = _pair(section, "username", "password", label)
    if pair is None:
        return None
    return EarthdataCredentials(username=pair[0], password=pair[1], origin=label)


def _earthdata_help(
    purpose: str, path: Path | None, netrc_file: str | Path | None, env: Mapping[str, str]
) -> str:
    """Every way to provide Earthdata credentials."""
    named_netrc = netrc_file or env.get("NETRC")
    netrc_where = Path(named_netrc).as_posix() if named_netrc else "~/.netrc"
    return (
        f"NASA Earthdata Login credentials are needed for {purpose}: set EARTHDATA_TOKEN, or "
        "EARTHDATA_USERNAME and EARTHDATA_PASSWORD, or add an [earthdata] section (username, "
        f"password or token) to {_secrets_where(path)}, or a 'machine {EARTHDATA_HOST}' entry "
        f"to {netrc_where}. Register at https://{EARTHDATA_HOST}/"
    )


def sentinelhub_credentials(
    secrets: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    *,
    purpose: str = "Sentinel Hub requests",
) -> SentinelHubCredentials:
    """A Sentinel Hub OAuth client from $SH_CLIENT_ID/$SH_CLIENT_SECRET, else from the secrets
    file's [sentinelhub] section (client_id, client_secret)."""
    pair, origin, _, path = _env_or_section(
        _environ(env),
        ("SH_CLIENT_ID", "SH_CLIENT_SECRET"),
        secrets,
        "sentinelhub",
        ("client_id", "client_secret"),
    )
    if pair is None:
        raise MissingCredentials(
            f"Sentinel Hub OAuth client credentials are needed for {purpose}: set SH_CLIENT_ID "
            "and SH_CLIENT_SECRET, or add a [sentinelhub] section (client_id, client_secret) "
            f"to {_secrets_where(path)}. OAuth clients are created at "
            "https://shapps.dataspace.copernicus.eu/dashboard/"
        )
    _logger.debug("Sentinel Hub credentials from %s", origin)
    return SentinelHubCredentials(client_id=pair[0], client_secret=pair[1], origin=origin)


def s3_credentials(
    secrets: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    *,
    purpose: str = "Copernicus Data Space S3 downloads",
) -> S3Credentials:
    """Copernicus Data Space S3 keys from $CDSE_S3_ACCESS_KEY/$CDSE_S3_SECRET_KEY, else from the
    secrets file's [s3] section (access_key, secret_key, optional host_base, host_bucket)."""
    pair, origin, section, path = _env_or_section(
        _environ(env),
        ("CDSE_S3_ACCESS_KEY", "CDSE_S3_SECRET_KEY"),
        secrets,
        "s3",
        ("access_key", "secret_key"),
    )
    if pair is None:
        raise MissingCredentials(
            f"Copernicus Data Space S3 keys are needed for {purpose}: set CDSE_S3_ACCESS_KEY "
            "and CDSE_S3_SECRET_KEY, or add an [s3] section (access_key, secret_key, optionally "
            f"host_base, host_bucket) to {_secrets_where(path)}. Keys are generated at "
            "https://eodata-s3keysmanager.dataspace.copernicus.eu/"
        )
    _logger.debug("Copernicus Data Space S3 keys from %s", origin)
    return S3Credentials(
        access_key=pair[0],
        secret_key=pair[1],
        host_base=section.get("host_base") or CDSE_S3_HOST,
        host_bucket=section.get("host_bucket") or CDSE_S3_HOST,
        origin=origin,
    )


# --- helpers ----------------------------------------------------------------------------------


def _env_or_section(
    env: Mapping[str, str],
    names: tuple[str, str],
    secrets: str | Path | None,
    section_name: str,
    keys: tuple[str, str],
) -> tuple[tuple[str, str] | None, str, Mapping[str, str], Path | None]:
    """A pair from the environment variables `names`, else from `keys` of the secrets file's
    section. Returns (pair or None, its origin, the section, the secrets file read)."""
    pair = _pair(env, *names, "the environment")
    if pair is not None:
        return pair, f"environment ({', '.join(names)})", {}, None
    path = secrets_path(secrets, env=env)
    section, origin = _secrets_section(path, section_name)
    return _pair(section, *keys, origin), origin, section, path


def redact(text: str, *secrets: str | None) -> str:
    """`text` with every non-empty secret replaced by "***" (longest first, so a secret that
    contains another is hidden whole)."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def _pair(values: Mapping[str, str], first: str, second: str, where: str) -> tuple[str, str] | None:
    """Both of `first` and `second` from `values`, None if neither is set, and an error naming
    the missing one if only one is (empty values count as unset)."""
    a, b = values.get(first) or "", values.get(second) or ""
    if a and b:
        return a, b
    if a or b:
        given, missing = (first, second) if a else (second, first)
        raise MissingCredentials(f"{where}: {given} is set but {missing} is missing")
    return None


def _must_exist(path: Path, source: str) -> Path:
    """`path` if it exists, else an error naming it and where it was named."""
    if not path.exists():
        raise MissingCredentials(f"{path.as_posix()} ({source}) does not exist")
    return path


def _environ(env: Mapping[str, str] | None) -> Mapping[str, str]:
    """`env`, or the process environment."""
    return os.environ if env is None else env
