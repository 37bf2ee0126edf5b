"""Entry point for `ray job submit -- python jobs/review_sweep.py ...`: the same flags as `longsweep review`.

    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python jobs/review_sweep.py --help
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the working dir ships src/

from longsweep.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["review", *sys.argv[1:]]))
