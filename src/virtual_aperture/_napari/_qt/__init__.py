"""All Qt of napari-virtual-aperture: the workspace dock, the diffraction view and their panels."""
