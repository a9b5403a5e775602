"""When the demo's sensors look: ISS-like ECOSTRESS overpasses, fixed revisits, and
cloud fractions stratified so that every series spans clear to nearly overcast."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np

from lstfill.demo.physics import utc_for_solar_time
from lstfill.demo.world import rng_for


@dataclass(frozen=True)
class Overpass:
    index: int
    time: datetime  # naive UTC
    solar_h: float
    cloud_fraction: float


def schedule(cfg: dict, start: date, end: date, lon: float) -> list[Overpass]:
    """ISS-like overpasses: random dates, local solar times spread over the day (a share at
    night), cloud fractions stratified from 0 (clear dates) to max_cloud_fraction."""
    rng = rng_for(int(cfg["seed"]), "schedule")
    n = int(cfg["n_overpasses"])
    ndays = (end - start).days + 1
    days = np.sort(rng.choice(ndays, size=n, replace=n > ndays))
    n_night = int(round(float(cfg["night_fraction"]) * n))
    n_day = n - n_night
    day_h = 6.8 + 12.0 * (np.arange(n_day) + rng.uniform(0, 1, n_day)) / max(n_day, 1)
    night_h = (
        21.3 + 7.5 * (np.arange(n_night) + rng.uniform(0, 1, n_night)) / max(n_night, 1)
    ) % 24
    hours = rng.permutation(np.concatenate([day_h, night_h]))
    fracs = stratified_cloud(rng, n, float(cfg["clear_fraction"]), float(cfg["max_cloud_fraction"]))
    out = []
    for i in range(n):
        d = start + timedelta(days=int(days[i]))
        t = utc_for_solar_time(d, float(hours[i]), lon) + timedelta(
            seconds=float(rng.uniform(0, 59))
        )
        out.append(Overpass(i, t.replace(microsecond=0), float(hours[i]), float(fracs[i])))
    return sorted(out, key=lambda o: o.time)


def every(start: date, end: date, step_days: int):
    """The days start, start + step_days, ... up to end."""
    day = start
    while day <= end:
        yield day
        day += timedelta(days=step_days)


def stratified_cloud(rng: np.random.Generator, n: int, clear: float, cmax: float) -> np.ndarray:
    """Cloud fractions in random order: round(clear * n) (at least 1) clear ones, the others
    stratified over 0.03..cmax so the set always spans clear to nearly overcast."""
    n_clear = min(n, max(1, int(round(clear * n))))
    m = n - n_clear
    cloudy = 0.03 + (cmax - 0.03) * (np.arange(m) + rng.uniform(0, 1, m)) / max(m, 1)
    return rng.permutation(np.concatenate([np.zeros(n_clear), cloudy]))
