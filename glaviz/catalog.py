"""The data catalog: sensors, input groups and their scaling, regions and sample datasets.

The catalog is a folder of YAML files (``data_catalog/`` in the repository, shipped as
``glaviz.data_catalog``). :func:`load_catalog` reads and validates it into frozen dataclasses: an
unknown key or a missing field is a :class:`CatalogError` that names the file and the entry.

Examples
--------
>>> from glaviz.catalog import load_catalog
>>> cat = load_catalog()
>>> cat.groups["optical"].bands
('blue', 'green', 'red', 'nir', 'swir1', 'swir2')
>>> cat.sensors["sentinel2_l1c"].groups["optical"].sensor_bands
('B02', 'B03', 'B04', 'B08', 'B11', 'B12')
>>> cat.region_index("HMA"), cat.unknown_slot
(5, 11)
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from glaviz.errors import CatalogError

__all__ = [
    "GROUPS",
    "Band",
    "Catalog",
    "CatalogError",
    "GroupSpec",
    "Region",
    "SampleDataset",
    "SampleFile",
    "SensorGroup",
    "SensorSpec",
    "load_catalog",
]

#: Input groups of GlaViTU, in the reference order of the fusion branches.
GROUPS: tuple[str, ...] = ("optical", "dem", "co_pol_sar", "cross_pol_sar", "in_sar", "thermal")

#: Conversion kinds and the parameters each one requires (others are optional).
CONVERSION_KINDS: dict[str, tuple[str, ...]] = {
    "identity": (),
    "linear": ("scale", "offset"),
    "sentinel2_l1c": ("quantification_value", "radiometric_offset", "offset_from_baseline"),
    "landsat_toa_reflectance": ("mult", "add"),
    "landsat_brightness_temperature": ("mult", "add", "k1", "k2"),
    "sigma0_db_to_log10": ("epsilon",),
    "sigma0_linear_to_log10": ("epsilon",),
}

DERIVED_KINDS = ("slope_degrees",)


@dataclass(frozen=True)
class Band:
    """One canonical band of an input group with its fixed min-max scaling."""

    name: str
    min: float
    max: float


@dataclass(frozen=True)
class GroupSpec:
    """An input group: canonical bands in order, their scaling, and the physical unit."""

    name: str
    unit: str
    band_specs: tuple[Band, ...]

    @property
    def bands(self) -> tuple[str, ...]:
        """Canonical band names in model order."""
        return tuple(b.name for b in self.band_specs)

    def band(self, name: str) -> Band:
        """The :class:`Band` called ``name`` (``KeyError`` naming the valid names otherwise)."""
        for b in self.band_specs:
            if b.name == name:
                return b
        raise KeyError(f"group {self.name!r} has no band {name!r}; bands: {list(self.bands)}")


@dataclass(frozen=True)
class SensorGroup:
    """How one sensor fills one input group."""

    group: str
    band_map: tuple[tuple[str, str], ...]  # (sensor band, canonical band), in file order
    conversion: Mapping[str, Any]
    nodata: float | None = None
    derived: tuple[tuple[str, str], ...] = ()  # (canonical band, derivation kind)
    resolution: tuple[tuple[str, float], ...] = ()  # (sensor band, native pixel size in m)

    @property
    def sensor_bands(self) -> tuple[str, ...]:
        """The sensor's own band names, in the order they are read from files."""
        return tuple(s for s, _ in self.band_map)

    @property
    def canonical_bands(self) -> tuple[str, ...]:
        """Canonical names of the bands read from files (derived bands excluded)."""
        return tuple(c for _, c in self.band_map)


@dataclass(frozen=True)
class SensorSpec:
    """A sensor (or product) and the input groups it provides."""

    name: str
    description: str
    groups: Mapping[str, SensorGroup]


@dataclass(frozen=True)
class Region:
    """One of the benchmark regions (its index is its place in the region one-hot)."""

    code: str
    name: str
    index: int
    rgi_regions: tuple[int, ...]
    subregions: tuple[str, ...]


@dataclass(frozen=True)
class SampleFile:
    """One file of a sample dataset."""

    name: str
    sha256: str
    remote: str | None


@dataclass(frozen=True)
class SampleDataset:
    """A small real dataset: where it comes from, its licence, its files and how to open it."""

    name: str
    description: str
    licence: str
    attribution: str
    base_url: str
    mirror_dir: str
    files: Mapping[str, SampleFile]
    region: str | None = None
    scene: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Catalog:
    """The validated catalog (see :func:`load_catalog`)."""

    groups: Mapping[str, GroupSpec]
    sensors: Mapping[str, SensorSpec]
    default_sensors: Mapping[str, str]
    regions: tuple[Region, ...]
    unknown_slot: int
    samples: Mapping[str, SampleDataset]
    path: Path = field(compare=False)

    @property
    def region_codes(self) -> tuple[str, ...]:
        """Region codes in one-hot order."""
        return tuple(r.code for r in self.regions)

    def region_index(self, code: str | None) -> int:
        """Index of ``code`` in the region one-hot (``None``/``"unknown"``: the unknown slot)."""
        if code is None or code == "unknown":
            return self.unknown_slot
        for r in self.regions:
            if r.code == code:
                return r.index
        raise KeyError(f"unknown region {code!r}; known: {list(self.region_codes)} or 'unknown'")

    def sensor(self, name: str) -> SensorSpec:
        """The sensor ``name``, with a message listing the known sensors otherwise."""
        try:
            return self.sensors[name]
        except KeyError:
            raise KeyError(
                f"unknown sensor {name!r}; known sensors: {sorted(self.sensors)} "
                f"(add one to {self.path / 'sensors.yml'})"
            ) from None

    def scaling_table(self) -> dict[str, dict[str, list[str] | list[float]]]:
        """The scaling table as plain JSON-ready data: ``{group: {"min": [...], "max": [...]}}``."""
        return {
            g.name: {
                "bands": list(g.bands),
                "min": [b.min for b in g.band_specs],
                "max": [b.max for b in g.band_specs],
            }
            for g in self.groups.values()
        }


# --------------------------------------------------------------------------------------------
# validation helpers


def _keys(
    entry: Any, where: str, *, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> Mapping[str, Any]:
    if not isinstance(entry, Mapping):
        raise CatalogError(f"{where}: expected a mapping, found {type(entry).__name__}")
    missing = [k for k in required if k not in entry]
    if missing:
        raise CatalogError(f"{where}: missing field(s) {missing}")
    unknown = [k for k in entry if k not in required and k not in optional]
    if unknown:
        raise CatalogError(
            f"{where}: unknown key(s) {unknown}; allowed: {sorted(required + optional)}"
        )
    return entry


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CatalogError(f"{path}: catalog file is missing")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise CatalogError(f"{path}: not valid YAML ({err})") from err
    if not isinstance(data, dict):
        raise CatalogError(f"{path}: expected a mapping at the top level")
    return data


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CatalogError(f"{where}: expected a number, found {value!r}")
    return float(value)


def _parse_groups(path: Path) -> dict[str, GroupSpec]:
    data = _keys(_read(path), str(path), required=("scaling",))
    groups: dict[str, GroupSpec] = {}
    for name, entry in data["scaling"].items():
        where = f"{path}: scaling.{name}"
        if name not in GROUPS:
            raise CatalogError(f"{where}: unknown input group; known groups: {list(GROUPS)}")
        _keys(entry, where, required=("unit", "bands"))
        bands = []
        for band, mm in entry["bands"].items():
            bw = f"{where}.bands.{band}"
            _keys(mm, bw, required=("min", "max"))
            lo, hi = _number(mm["min"], bw + ".min"), _number(mm["max"], bw + ".max")
            if not hi > lo:
                raise CatalogError(f"{bw}: max ({hi}) must be greater than min ({lo})")
            bands.append(Band(band, lo, hi))
        groups[name] = GroupSpec(name, str(entry["unit"]), tuple(bands))
    missing = [g for g in GROUPS if g not in groups]
    if missing:
        raise CatalogError(f"{path}: scaling: missing input group(s) {missing}")
    return {g: groups[g] for g in GROUPS}


def _resolution(
    value: Any, band_map: tuple[tuple[str, str], ...], where: str
) -> tuple[tuple[str, float], ...]:
    """``resolution:`` of a sensor group: one number for all bands or ``{sensor band: m}``."""
    if value is None:
        return ()
    bands = [s for s, _ in band_map]
    if not isinstance(value, Mapping):
        return tuple((b, _number(value, where)) for b in bands)
    unknown = [k for k in value if k not in bands]
    missing = [b for b in bands if b not in value]
    if unknown or missing:
        raise CatalogError(f"{where}: give every band of {bands} (missing {missing}, "
                           f"unknown {unknown})")  # fmt: skip
    return tuple((b, _number(value[b], f"{where}.{b}")) for b in bands)


def _parse_sensors(
    path: Path, groups: Mapping[str, GroupSpec]
) -> tuple[dict[str, SensorSpec], dict[str, str]]:
    data = _keys(_read(path), str(path), required=("sensors", "default_sensors"))
    sensors: dict[str, SensorSpec] = {}
    for name, entry in data["sensors"].items():
        where = f"{path}: sensors.{name}"
        _keys(entry, where, required=("description", "groups"))
        sgroups: dict[str, SensorGroup] = {}
        for gname, g in entry["groups"].items():
            gw = f"{where}.groups.{gname}"
            if gname not in groups:
                raise CatalogError(f"{gw}: unknown input group; known groups: {list(GROUPS)}")
            _keys(
                g, gw, required=("bands", "conversion"),
                optional=("nodata", "derived", "resolution"),
            )  # fmt: skip
            band_map = tuple((str(k), str(v)) for k, v in g["bands"].items())
            derived = tuple((str(k), str(v)) for k, v in (g.get("derived") or {}).items())
            for canon in [c for _, c in band_map] + [c for c, _ in derived]:
                if canon not in groups[gname].bands:
                    raise CatalogError(
                        f"{gw}: band {canon!r} is not a band of group {gname!r} "
                        f"({list(groups[gname].bands)})"
                    )
            for canon, kind in derived:
                if kind not in DERIVED_KINDS:
                    raise CatalogError(f"{gw}.derived.{canon}: unknown derivation {kind!r}")
            conv = g["conversion"]
            cw = f"{gw}.conversion"
            if not isinstance(conv, Mapping) or "kind" not in conv:
                raise CatalogError(f"{cw}: missing field(s) ['kind']")
            kind = conv["kind"]
            if kind not in CONVERSION_KINDS:
                raise CatalogError(f"{cw}: unknown kind {kind!r}; known: {list(CONVERSION_KINDS)}")
            _keys(conv, cw, required=("kind", *CONVERSION_KINDS[kind]))
            nodata = g.get("nodata")
            sgroups[gname] = SensorGroup(
                gname,
                band_map,
                dict(conv),
                None if nodata is None else _number(nodata, gw + ".nodata"),
                derived,
                _resolution(g.get("resolution"), band_map, gw + ".resolution"),
            )
        sensors[name] = SensorSpec(name, str(entry["description"]).strip(), sgroups)
    defaults = dict(data["default_sensors"])
    for gname, sname in defaults.items():
        if gname not in groups or sname not in sensors or gname not in sensors[sname].groups:
            raise CatalogError(
                f"{path}: default_sensors.{gname}: {sname!r} is not a sensor providing {gname!r}"
            )
    return sensors, defaults


def _parse_regions(path: Path) -> tuple[tuple[Region, ...], int]:
    data = _keys(_read(path), str(path), required=("regions", "unknown_slot"))
    regions = []
    for i, entry in enumerate(data["regions"]):
        where = f"{path}: regions[{i}]"
        _keys(entry, where, required=("code", "name", "rgi_regions", "subregions"))
        regions.append(
            Region(
                str(entry["code"]),
                str(entry["name"]),
                i,
                tuple(int(r) for r in entry["rgi_regions"]),
                tuple(str(s) for s in entry["subregions"]),
            )
        )
    codes = [r.code for r in regions]
    if len(set(codes)) != len(codes):
        raise CatalogError(f"{path}: regions: duplicate region codes in {codes}")
    slot = int(data["unknown_slot"])
    if slot != len(regions):
        raise CatalogError(
            f"{path}: unknown_slot must follow the regions (expected {len(regions)}, found {slot})"
        )
    return tuple(regions), slot


def _parse_samples(
    path: Path, sensors: Mapping[str, SensorSpec], codes: tuple[str, ...]
) -> dict[str, SampleDataset]:
    data = _keys(_read(path), str(path), required=("samples",))
    samples: dict[str, SampleDataset] = {}
    for name, entry in data["samples"].items():
        where = f"{path}: samples.{name}"
        _keys(
            entry,
            where,
            required=("description", "licence", "attribution", "base_url", "mirror_dir", "files"),
            optional=("region", "scene"),
        )
        files: dict[str, SampleFile] = {}
        for fname, f in entry["files"].items():
            fw = f"{where}.files.{fname}"
            _keys(f, fw, required=("remote", "sha256"))
            sha = str(f["sha256"])
            if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
                raise CatalogError(f"{fw}.sha256: expected 64 lowercase hex digits, found {sha!r}")
            files[fname] = SampleFile(fname, sha, f["remote"])
        region = entry.get("region")
        if region is not None and region not in codes:
            raise CatalogError(f"{where}.region: unknown region {region!r}; known: {list(codes)}")
        scene = entry.get("scene")
        if scene is not None:
            sw = f"{where}.scene"
            _keys(
                scene,
                sw,
                required=("sensor",),
                optional=(*GROUPS, "outlines", "splits", "split_axis"),
            )
            if scene["sensor"] not in sensors:
                raise CatalogError(f"{sw}.sensor: unknown sensor {scene['sensor']!r}")
            for name_, rng in (scene.get("splits") or {}).items():
                ranges = rng.values() if isinstance(rng, Mapping) else [rng]
                ok = all(isinstance(r, list) and len(r) == 2 and 0 <= r[0] < r[1] for r in ranges)
                if not ok or (isinstance(rng, Mapping) and not set(rng) <= {"x", "y"}):
                    raise CatalogError(
                        f"{sw}.splits.{name_}: expected [start, stop] or {{y: [..], x: [..]}}, "
                        f"got {rng!r}"
                    )
            if scene.get("split_axis", "x") not in ("x", "y"):
                raise CatalogError(f"{sw}.split_axis: must be 'x' or 'y'")
            for key, value in scene.items():
                if key in ("sensor", "splits", "split_axis"):
                    continue
                for fname in [value] if isinstance(value, str) else value:
                    if fname not in files:
                        raise CatalogError(f"{sw}.{key}: {fname!r} is not one of the files")
        samples[name] = SampleDataset(
            name=name,
            description=" ".join(str(entry["description"]).split()),
            licence=" ".join(str(entry["licence"]).split()),
            attribution=" ".join(str(entry["attribution"]).split()),
            base_url=str(entry["base_url"]),
            mirror_dir=str(entry["mirror_dir"]),
            files=files,
            region=region,
            scene=scene,
        )
    return samples


def _default_dir() -> Path:
    env = os.environ.get("GLAVIZ_CATALOG")
    if env:
        return Path(env)
    return Path(str(resources.files("glaviz.data_catalog")))


@functools.lru_cache(maxsize=8)
def _load(path: Path) -> Catalog:
    groups = _parse_groups(path / "scaling.yml")
    sensors, defaults = _parse_sensors(path / "sensors.yml", groups)
    regions, slot = _parse_regions(path / "regions.yml")
    samples = _parse_samples(path / "samples.yml", sensors, tuple(r.code for r in regions))
    return Catalog(groups, sensors, defaults, regions, slot, samples, path)


def load_catalog(path: str | os.PathLike[str] | None = None) -> Catalog:
    """Read and validate the data catalog.

    Parameters
    ----------
    path : path-like, optional
        Folder holding ``scaling.yml``, ``sensors.yml``, ``regions.yml`` and ``samples.yml``.
        Defaults to ``$GLAVIZ_CATALOG`` when set, else the catalog shipped with glaviz.

    Returns
    -------
    Catalog
        Frozen, validated entries. Results are cached per folder.

    Raises
    ------
    CatalogError
        A file is missing or malformed; the message names the file and the entry.

    Examples
    --------
    >>> cat = load_catalog()
    >>> sorted(cat.samples)[:2]
    ['everest_landsat7', 'exploradores_aster']
    """
    return _load(Path(path).resolve() if path is not None else _default_dir().resolve())
