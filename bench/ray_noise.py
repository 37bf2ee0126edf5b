"""What Ray beside an engine costs on a small machine: the bare llama.cpp loop of overhead.py, timed
alone and beside an idle local Ray (default settings, then the embedded settings of runtime/cluster.py).

Each mode runs in a fresh process. Not part of `make bench` (about 5 minutes on 2 cores).

    python bench/ray_noise.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import write  # noqa: F401 - sets sys.path

MODES = ("alone", "beside_ray_default", "beside_ray_embedded")


def _bare_seconds() -> float:
    from overhead import _spec, review_requests
    from longsweep.engines.registry import load_engine
    spec = _spec("smollm2-135m", 2048, os.cpu_count() or 2)
    with tempfile.TemporaryDirectory() as tmp:
        _, reqs = review_requests(spec, Path(tmp) / "papers", 4, 128)
    engine = load_engine(spec)
    t0 = time.perf_counter()
    engine.generate(reqs)
    return time.perf_counter() - t0


def child(mode: str) -> None:
    import ray
    if mode == "beside_ray_default":
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="ERROR")
    elif mode == "beside_ray_embedded":
        from longsweep.runtime.cluster import connect
        connect("local", num_cpus=os.cpu_count())
    if mode != "alone":
        time.sleep(3)  # let Ray settle
    print(json.dumps({"mode": mode, "bare_loop_s": round(_bare_seconds(), 2)}))


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        return child(sys.argv[2])
    here = Path(__file__).resolve().parent
    out = {}
    for mode in MODES:
        r = subprocess.run([sys.executable, __file__, "--child", mode], cwd=here, check=True,
                           capture_output=True, text=True)
        out[mode] = json.loads(r.stdout.strip().splitlines()[-1])["bare_loop_s"]
        print(mode, out[mode], flush=True)
    write("ray_noise", {"command": "python bench/ray_noise.py", "bare_loop_s": out,
                        "slowdown_beside_ray_default": round(out["beside_ray_default"] / out["alone"], 3),
                        "slowdown_beside_ray_embedded": round(out["beside_ray_embedded"] / out["alone"], 3)})


if __name__ == "__main__":
    main()
