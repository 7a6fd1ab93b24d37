"""Which site and camera an Open311 report belongs to, and the service codes Open311 offers."""

from __future__ import annotations

import math

from central.config import CentralConfig

__all__ = ["place_of_report", "service_codes"]


def service_codes(config: CentralConfig) -> list[str]:
    """The event codes orders are filed under (the default, and any a city sets): Open311 service codes."""
    codes = [config.work_orders.event_code]
    codes += [c.event_code for c in config.cities if c.event_code and c.event_code not in codes]
    return codes


def _distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine, mean Earth radius)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000.0 * math.asin(min(1.0, math.sqrt(a)))


def place_of_report(
    config: CentralConfig, lat: float | None, lon: float | None, sites: frozenset[str] | None, radius_m: float
) -> tuple[str, str]:
    """(site, camera) a report belongs to: the nearest configured camera (or site) within radius_m
    of the reported point, among `sites` (None: all). A reporter confined to one site files there.
    ('', '') when nothing matches: the order waits, unassigned, for a person to register it."""
    best: tuple[float, str, str] | None = None
    if lat is not None and lon is not None:
        for site in config.sites:
            if sites is not None and site.id not in sites:
                continue
            places = [(cam, site.place_of(cam)) for cam in site.cameras]
            places.append(("", site.place_of("")))
            for camera, p in places:
                if p.lat is None or p.lon is None:
                    continue
                d = _distance_m(lat, lon, p.lat, p.lon)
                if d <= radius_m and (best is None or d < best[0]):
                    best = (d, site.id, camera)
    if best is not None:
        return best[1], best[2]
    if sites is not None and len(sites) == 1:
        return next(iter(sites)), ""
    return "", ""
