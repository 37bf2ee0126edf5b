"""Entry point for `ray job submit -- python jobs/story_sweep.py ...`: the same flags as `longsweep stories`.

    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python jobs/story_sweep.py --help
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the working dir ships src/

from longsweep.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["stories", *sys.argv[1:]]))
