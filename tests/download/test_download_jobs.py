"""Download jobs: days per source, settings, the credential check before any request, the
`lstfill download` command and the workflow's download rules (dry run of the Vienna example,
one INCA day fetched from a local stand-in of the GeoSphere API, SRTM failing fast without
credentials)."""

import datetime as dt
import inspect
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from werkzeug import Response

from lstfill.cli import main
from lstfill.config import load_config, validate_config
from lstfill.download import jobs, targets
from lstfill.download.base import ACCOUNTS
from lstfill.download.credentials import MissingCredentials
from lstfill.sources.inca import read_inca, write_inca
from tests.conftest import CREDENTIAL_VARS, ROOT, SNAKEMAKE, job_counts

METADATA = json.loads((ROOT / "tests/fixtures/download/inca/metadata.json").read_text())
INCA_PATH = "/v1/grid/historical/inca-v1-1h-1km"


def small_region(inca_url: str | None = None) -> dict:
    """A 2 x 2 km download region in Vienna."""
    region = {
        "source": "download",
        "start": "2023-07-01",
        "end": "2023-07-02",
        "grid": {
            "crs": "EPSG:32633",
            "bounds": [600000, 5335000, 602100, 5337100],
            "resolution": 70,
        },
        "download": {"sources": ["inca", "srtm"]},
    }
    if inca_url:
        region["download"]["inca"] = {"url": inca_url}
    return region


def inca_answer(day: dt.date) -> bytes:
    """A GeoSphere-like NetCDF of one day: 3 x 3 cells, T2M = hour of day in degC."""
    times = [dt.datetime.combine(day, dt.time(h)) for h in range(24)]
    x = np.array([600500.0, 601500.0, 602500.0])
    y = np.array([482500.0, 481500.0, 480500.0])
    t2m = np.broadcast_to(np.arange(24, dtype=float)[:, None, None], (24, 3, 3)).copy()
    data = {"T2M": t2m, **{p: np.zeros((24, 3, 3)) for p in ("GL", "RH2M", "UU", "VV")}}
    path = write_inca(Path(f"/tmp/inca-answer-{day}.nc"), times, x, y, data)
    try:
        return path.read_bytes()
    finally:
        path.unlink()


def serve_inca(httpserver) -> list[str]:
    """Metadata and one-day NetCDF answers; returns the list of data queries received."""
    seen: list[str] = []

    def data(request):
        seen.append(request.query_string.decode())
        day = dt.date.fromisoformat(request.args["start"][:10])
        return Response(inca_answer(day), 200, content_type="application/x-netcdf")

    httpserver.expect_request(f"{INCA_PATH}/metadata").respond_with_json(METADATA)
    httpserver.expect_request(INCA_PATH).respond_with_handler(data)
    return seen


def test_source_days_widen_where_the_cubes_look_outside_the_period():
    cfg = validate_config({"regions": {"v": small_region()}})
    region = cfg["regions"]["v"]
    window = cfg["prepare"]["sentinel2"]["window_days"]
    eco = targets.source_days("ecostress", region, cfg)
    assert eco == [dt.date(2023, 7, 1), dt.date(2023, 7, 2)]
    s2 = targets.source_days("sentinel2", region, cfg)
    assert s2[0] == dt.date(2023, 7, 1) - dt.timedelta(days=window)
    assert s2[-1] == dt.date(2023, 7, 2) + dt.timedelta(days=window)
    assert targets.source_days("inca", region, cfg)[0] == dt.date(2023, 6, 30)
    assert targets.source_days("srtm", region, cfg) == []


def test_provider_settings_share_bands_and_parameters_with_prepare():
    cfg = validate_config({"regions": {"v": small_region("http://x")}})
    region = cfg["regions"]["v"]
    inca = targets.provider_settings("inca", region, cfg)
    assert inca["url"] == "http://x"
    assert inca["parameters"] == cfg["prepare"]["inca"]["parameters"]
    assert inca["max_values"] == 10_000_000
    s2 = targets.provider_settings("sentinel2", region, cfg)
    assert s2["bands"] == cfg["prepare"]["sentinel2"]["bands"]
    assert s2["base_url"] == "https://sh.dataspace.copernicus.eu"
    assert targets.provider_settings("modis", region, cfg)["backend"] == "earthaccess"


def _positional(func) -> list[str]:
    """The names of a function's positional parameters."""
    params = inspect.signature(func).parameters.values()
    return [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]


def _optional_keywords(func) -> dict[str, object]:
    """A function's keyword-only parameters and their defaults."""
    params = inspect.signature(func).parameters.values()
    return {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY}


@pytest.mark.parametrize("source", targets.SOURCES)
def test_every_provider_has_the_one_interface(source):
    module = jobs.provider(source)
    assert module.ACCOUNT in (*ACCOUNTS, None)
    assert _positional(module.search) == ["area", "start", "end", "settings"]
    assert _optional_keywords(module.search)["creds"] is None
    assert _positional(module.download) == ["refs", "dest", "settings"]
    keywords = _optional_keywords(module.download)
    assert keywords["creds"] is None and keywords["fetcher"] is None


def test_unknown_download_key_is_named():
    region = small_region()
    region["download"]["inca"] = {"urll": "http://x"}
    with pytest.raises(Exception, match=r"regions\.v\.download\.inca\.urll"):
        validate_config({"regions": {"v": region}})


@pytest.mark.parametrize(
    ("source", "named"),
    [
        ("srtm", "EARTHDATA_USERNAME"),
        ("ecostress", "EARTHDATA_TOKEN"),
        ("sentinel2", "SH_CLIENT_ID"),
    ],
)
def test_missing_credentials_fail_before_any_request(no_credentials, source, named):
    from lstfill.download.base import Area

    cfg = validate_config({"regions": {"v": small_region("http://127.0.0.1:9/never")}})
    area = Area.from_config("v", cfg["regions"]["v"])
    settings = targets.provider_settings(source, cfg["regions"]["v"], cfg)
    with pytest.raises(MissingCredentials, match=named):
        jobs.run_download(source, area, None, None, settings, no_credentials / "raw")
    assert not (no_credentials / "raw").exists()


def test_cli_dry_run_lists_files_and_fetches_nothing(httpserver, no_credentials, capsys):
    seen = serve_inca(httpserver)
    cfg = no_credentials / "v.yaml"
    cfg.write_text(yaml.safe_dump({"regions": {"v": small_region(httpserver.url_for(INCA_PATH))}}))
    args = [
        "download",
        "--config",
        str(cfg),
        "--source",
        "inca",
        "--dates",
        "2023-07-01..2023-07-02",
    ]
    assert main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "inca-v1-1h-1km_20230701T0000_20230701T2300.nc" in out
    assert "inca-v1-1h-1km_20230702T0000_20230702T2300.nc" in out
    assert "2 files" in out
    assert seen == []
    assert not (no_credentials / "resources").exists()

    assert main(args) == 0
    raw = no_credentials / "resources/v/raw/inca"
    files = sorted(p.name for p in raw.glob("*.nc"))
    assert files == [
        "inca-v1-1h-1km_20230701T0000_20230701T2300.nc",
        "inca-v1-1h-1km_20230702T0000_20230702T2300.nc",
    ]
    assert float(read_inca(raw / files[0]).fields["T2M"][5, 1, 1]) == pytest.approx(
        278.15, abs=0.01
    )


def test_cli_without_credentials_names_what_to_set(no_credentials, capsys):
    cfg = no_credentials / "v.yaml"
    cfg.write_text(yaml.safe_dump({"regions": {"v": small_region()}}))
    assert main(["download", "--config", str(cfg), "--source", "srtm", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "EARTHDATA_USERNAME" in err and ".netrc" in err


def test_cli_rejects_a_bad_date_range(capsys):
    with pytest.raises(SystemExit):
        main(["download", "--source", "inca", "--dates", "2023-07-05..2023-07-01"])
    assert "ends before it starts" in capsys.readouterr().err


def test_vienna_dry_run_lists_one_download_job_per_source_and_day(tmp_path):
    cfg = load_config(ROOT / "config/examples/vienna.yaml")
    proc = subprocess.run(
        [
            *SNAKEMAKE,
            "-d",
            str(tmp_path),
            "-n",
            "--configfile",
            str(ROOT / "config/examples/vienna.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = job_counts(proc.stdout + proc.stderr)
    region = cfg["regions"]["vienna"]
    assert counts["download_ecostress"] == 92  # June to August 2023
    assert counts["download_inca"] == 93
    assert counts["download_sentinel2"] == 92 + 2 * cfg["prepare"]["sentinel2"]["window_days"]
    assert counts["download_srtm"] == 1
    assert "download_modis" not in counts  # not among the example's sources
    assert counts["acquire_raw"] == 1
    assert set(region["download"]["sources"]) == {"ecostress", "sentinel2", "inca", "srtm"}


def test_workflow_fetches_inca_and_fails_fast_without_earthdata(httpserver, no_credentials):
    serve_inca(httpserver)
    wd = no_credentials / "wd"
    (wd / "config").mkdir(parents=True)
    region = small_region(httpserver.url_for(INCA_PATH))
    region["end"] = "2023-07-11"  # a period the workflow's day splits can be made from
    cfg = {"regions": {"v": region}}
    (wd / "config/config.yaml").write_text(yaml.safe_dump(cfg))
    env = {k: v for k, v in __import__("os").environ.items() if k not in CREDENTIAL_VARS}
    env["HOME"] = str(no_credentials)
    targets = ["resources/v/downloads/inca/20230701.json", "resources/v/downloads/srtm.json"]
    proc = subprocess.run(
        [*SNAKEMAKE, "-d", str(wd), "--cores", "1", "--workflow-profile", "none", "--keep-going"]
        + targets,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode != 0  # the SRTM job fails
    manifest = json.loads((wd / targets[0]).read_text())
    assert manifest["source"] == "inca" and manifest["day"] == "2023-07-01"
    assert manifest["found"] == ["inca-v1-1h-1km_20230701T0000_20230701T2300.nc"]
    assert Path(wd / manifest["files"][0]).is_file()
    assert not (wd / targets[1]).exists()
    srtm_log = (wd / "logs/download_srtm/v.log").read_text()
    assert "EARTHDATA_USERNAME" in srtm_log and "[earthdata]" in srtm_log
    assert not (wd / "resources/v/raw/srtm").exists()


def test_a_pymodis_server_with_its_own_netrc_entry_needs_no_earthdata_account(no_credentials):
    settings = {"backend": "pymodis", "url": "https://modis.mirror.example.org"}
    with pytest.raises(MissingCredentials, match="EARTHDATA_USERNAME"):
        jobs.require_credentials("modis", settings=settings)
    netrc = no_credentials / "home" / ".netrc"
    netrc.write_text("machine modis.mirror.example.org login me password pw\n")
    netrc.chmod(0o600)
    assert jobs.require_credentials("modis", settings=settings) is None
    with pytest.raises(MissingCredentials):  # the earthaccess backend still needs Earthdata
        jobs.require_credentials("modis", settings={"backend": "earthaccess"})
