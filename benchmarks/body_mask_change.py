"""Old vs new body mask and inference (issue 24): run once with PYTHONPATH at the package before the change and once after;
shipped crossstitch and reg_svf on the validation pairs of a cohort at /tmp/demo (jrs-nb phantom --preset demo --n-train 1 --n-val 2 --n-test 0).
    PYTHONPATH=OLD python benchmarks/body_mask_change.py old.json crossstitch reg_svf"""
import json, sys, numpy as np, torch
torch.set_num_threads(1)
from jrs_nb.data.dataset import JRSDataset
from jrs_nb.inference import infer_pair
from jrs_nb.metrics import evaluate_labels, dvf_error, dvf_quality
from jrs_nb.core import unit_to_hu
from jrs_nb.checkpoints import load_model
import jrs_nb.pretrained as P
try:
    from jrs_nb.core import body_mask; old = False
except ImportError:
    from jrs_nb.evaluation import body_mask; old = True
ds = JRSDataset("/tmp/demo", "val", load_dvf=True)
out = {}
for name in sys.argv[2:]:
    net = P.pretrained(name) if hasattr(P, "pretrained") else None
    for i in range(len(ds)):
        pv = ds[i]; pr = infer_pair(net, pv, tile=208)
        row = {}
        for path, lab in (("seg", pr.seg), ("reg", pr.warped_labels)):
            if lab is None: continue
            r = evaluate_labels(lab, pv.fixed_seg, pv.spacing)
            for o, v in r.items(): row[f"{path}_{o}_dsc"] = float(v["dsc"]); row[f"{path}_{o}_msd"] = float(v["msd"])
        body = body_mask(unit_to_hu(pv.fixed))
        e = dvf_error(pr.dvf, pv.dvf, body)["body"]
        row.update(body_err=float(e["mean"]), slope=float(e["slope"]), cosine=float(e["cosine"]),
                   fold=float(dvf_quality(pr.dvf, pv.spacing, body)["fold_pct"]), body_vox=int(body.sum()))
        out[f"{name}/{i}"] = row
json.dump(out, open(sys.argv[1], "w"), indent=1)
print("done", old)
