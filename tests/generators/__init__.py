"""Independent test-data generators (they do not import virtual_aperture)."""
