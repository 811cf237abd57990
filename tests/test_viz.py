"Static figures of jrs_nb.viz and the widgets of jrs_nb.widgets on tiny synthetic data (no browser)."
import json
import numpy as np
import pytest
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

from jrs_nb.core import JRSDataError
from jrs_nb.metrics import jacobian_determinant
from jrs_nb import viz
from jrs_nb.widgets import SliceViewer, DVFInspector, AlphaExplorer, Viewer3D


@pytest.fixture(scope="module")
def tv(): return viz.toy_view((16, 20, 24), seed=3)


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _contours(ax): return [c for c in ax.collections if hasattr(c, "jrs_source")]


@pytest.mark.parametrize("plane", ["axial", "coronal", "sagittal"])
def test_overlay_contours_per_source_and_organ(tv, plane):
    fig = viz.show_overlay(tv, plane, sources=("gt", "seg", "reg", "elastix"), organs=(1, 4))
    ax = fig.axes[0]
    assert len(ax.images) == 1
    cs = _contours(ax)
    assert {c.jrs_source for c in cs} == {"gt", "seg", "reg", "elastix"}
    assert {c.jrs_organ for c in cs} <= {1, 4} and 1 in {c.jrs_organ for c in cs}
    idx = viz.default_index(tv.contours["gt"], plane)
    assert ax.images[0].get_array().shape == viz.take_slice(tv.fixed, plane, idx).shape


def test_composite_modes():
    a, b = np.full((6, 6), -160.), np.full((6, 6), 240.)   # the ends of the default window
    cb = viz.composite(a, b, "checkerboard", tiles=3)
    assert cb[0, 0] == 0 and cb[0, 2] == 1 and cb[2, 0] == 1 and cb[2, 2] == 0
    np.testing.assert_allclose(viz.composite(a, b, "difference"), 400.)
    np.testing.assert_allclose(viz.composite(a, b, "blend", alpha=.25), .25)
    with pytest.raises(ValueError, match="mode"): viz.composite(a, b, "nope")


def test_comparison_panels(tv):
    fig = viz.show_comparison(tv, "elastix", "coronal")
    assert sum(len(ax.images) for ax in fig.axes) == 3
    with pytest.raises(ValueError, match="no warped image"): viz.show_comparison(tv, "missing")


def test_dvf_panels_and_jacobian(tv):
    j = viz.slice_jacobian(tv.dvfs["reg"], tv.spacing, "sagittal", 5)
    np.testing.assert_allclose(j, jacobian_determinant(tv.dvfs["reg"], tv.spacing)[:, :, 5], atol=1e-5)
    fig = viz.show_dvf(tv.dvfs["reg"], tv.spacing, "axial", 8, image=tv.fixed, true_dvf=tv.dvfs["truth"])
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == "quiver" and titles[1] == "grid" and titles[2] == "magnitude"
    assert titles[3].startswith("jacobian (") and titles[4].startswith("|phi - phi_true|")
    n_fold = int((jacobian_determinant(tv.dvfs["reg"], tv.spacing)[8] <= 0).sum())
    assert titles[3] == f"jacobian ({n_fold} folded)" and n_fold > 0
    assert len(fig.axes[0].collections) == 1   # quiver
    assert len(fig.axes[1].lines) > 4           # grid lines
    fig = viz.show_dvf(tv.dvfs["truth"], tv.spacing, "axial", 8)  # no truth: no error panel
    assert not any(ax.get_title().startswith("|phi") for ax in fig.axes)
    with pytest.raises(ValueError, match="unknown panels"): viz.show_dvf(tv.dvfs["reg"], panels=("x",))


def test_alpha_figures_and_sharing(tmp_path):
    hist = viz.toy_alpha_history(4, channels=(2, 3, 3, 2))
    a = hist[0][1]
    assert sum(len(ax.images) for ax in viz.show_alphas(a).axes) == 4
    assert len(viz.show_sharing(a).axes[0].patches) == 8
    assert all(len(ax.patches) > 0 for ax in viz.show_alpha_hist(a).axes)
    assert len(viz.show_alpha_evolution(hist).axes[0].lines) == 4
    assert len(viz.compare_alphas(a, hist[-1][1]).axes[1].patches) == 8
    s = viz.sharing(np.array([[[3., 1.], [2., 2.]]]))
    np.testing.assert_allclose([s["seg"][0], s["reg"][0], s["total"][0]], [.25, .5, 3 / 8])
    log = tmp_path / "alphas.jsonl"
    log.write_text("".join(json.dumps({"iteration": i, "alphas": {k: v.tolist() for k, v in al.items()}}) + "\n"
                           for i, al in hist[::-1]))
    back = viz.load_alpha_history(tmp_path)
    assert [i for i, _ in back] == [0, 10, 20, 30]
    np.testing.assert_allclose(back[0][1]["x5"], a["x5"], atol=1e-6)
    log.write_text("not json\n")
    with pytest.raises(JRSDataError, match="line 1"): viz.load_alpha_history(log)


def test_slice_viewer_updates(tv):
    sv = SliceViewer([tv, viz.toy_view((16, 20, 24), seed=4)])
    n, png = sv.n_draws, sv.image.value
    sv.index.value = (sv.index.value + 2) % sv.index.max
    assert sv.n_draws == n + 1 and sv.image.value != png and png[:4] == b"\x89PNG"
    assert f"axial {sv.index.value}" in sv.fig.axes[0].get_title()
    sv.plane.value = "sagittal"; assert sv.index.max == 23
    sv.sources["elastix"].value = True
    assert "elastix" in {c.jrs_source for c in _contours(sv.fig.axes[0])}
    sv.mode.value = "difference"; assert "difference" in sv.fig.axes[0].get_title()
    sv.scan.value = 1; assert sv.fig._suptitle.get_text().startswith("toy 4")


def test_dvf_inspector_and_alpha_explorer_update(tv):
    di = DVFInspector(tv)
    n = di.n_draws
    di.update({"name": "value"})  # observers are plain callables
    di.panels["magnitude"].value = True
    assert di.n_draws == n + 2 and any(ax.get_title() == "magnitude" for ax in di.fig.axes)
    ae = AlphaExplorer(viz.toy_alpha_history(3, channels=(2, 2, 2, 2)))
    n = ae.n_draws
    ae.iteration.value = 0; ae.view.value = "compare"
    assert ae.n_draws == n + 2 and len(ae.fig.axes) == 2


def test_viewer3d_toggles(tv):
    v = Viewer3D(tv)
    names = [o.name for o in v.plot.objects]
    assert names[-1] == "dvf reg" and "prostate" in names
    v.show["dvf"].value = False
    assert v.plot.objects[-1].visible is False
    v.source.value = "seg"; assert v.n_draws == 2 and v.plot.objects[-1].visible is False
    with pytest.raises(ValueError, match="backend"): viz_backend_error(tv)


def viz_backend_error(tv):
    from jrs_nb.widgets import view_3d
    view_3d(tv, backend="vtk")
