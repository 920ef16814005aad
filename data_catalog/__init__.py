"""YAML data catalog shipped with glaviz (sensors, regions, sample datasets)."""
