"""Notebook-first joint registration and segmentation (JRS) of 3D prostate CT for adaptive radiotherapy

Modules:

- `jrs_nb.layers`: The conv block, strided downsampling, upsampling, centre crop, and the spatial transformer that warps a moving patch by a DVF onto the grid of an output level.
- `jrs_nb.models.crossstitch`: Two base networks, one per task, that learn how much to share: a learnable 2x2 mixing matrix per channel at four places.
- `jrs_nb.models.gan`: A PatchGAN critic built like the contracting path, the synthesiser of "well-aligned" real triples, the WGAN losses, weight clipping and the critic schedule.
- `jrs_nb.models.jrs`: `build_model(name)` for the single-task, loss-joined, hard-sharing and cross-stitch networks; one forward signature and one output type for all of them.
- `jrs_nb.models.unet`: The 3D U-Net-like network of all JRS architectures: valid convolutions, two strided downsamplings, three deeply supervised output levels."""

__version__ = "0.1.0"


def __getattr__(name):
    "`jrs_nb.pretrained` without importing it first: the callable module of trained networks, loaded on first use."
    if name == "pretrained":
        import importlib
        return importlib.import_module("jrs_nb.pretrained")
    raise AttributeError(f"module 'jrs_nb' has no attribute {name!r}")
