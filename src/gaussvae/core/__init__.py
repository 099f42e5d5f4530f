"""Shared ground: errors, params, channels, the HDF5 files, atomic writes, devices and processes."""
