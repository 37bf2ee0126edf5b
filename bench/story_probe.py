"""The story half of bench/saturation.py alone: one `stories` sweep on one vLLM actor with the step probe,
and the running set over time (every 4th engine step), to see how many sequences decode at once.

    .venv-vllm/bin/python bench/story_probe.py      # 16 sequences x 3 turns, 24-token answers, max_num_seqs 16
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import saturation as S  # noqa: E402
from fedbench import Steps, start_ray, vllm_spec  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sequences", type=int, default=16)
    ap.add_argument("--turns", type=int, default=3)
    ap.add_argument("--story-tokens", type=int, default=24)
    ap.add_argument("--max-num-seqs", type=int, default=16)
    ap.add_argument("--window", type=int, default=1024)
    ap.add_argument("--cpus", type=int, default=os.cpu_count() or 2)
    a = ap.parse_args()
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    spec = vllm_spec(max_num_seqs=a.max_num_seqs, window=a.window, num_cpus=a.cpus)
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        seqs = tmp / "s.yaml"
        S.story_file(seqs, a.sequences, a.turns)
        start_ray(a.cpus)
        S.story_sweep(a, spec, tmp, seqs)
        st = Steps.read(tmp / "steps_stories.txt")
    print("running set over time (s, sequences):", [(round(t - st.t0[0], 1), n) for t, n in zip(st.t0, st.n)][::4])


if __name__ == "__main__":
    main()
