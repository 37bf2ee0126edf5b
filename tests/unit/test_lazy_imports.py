import subprocess
import sys


def test_import_longsweep_loads_no_heavy_library():
    code = (
        "import sys, longsweep, longsweep.cli, longsweep.commands, longsweep.tokens, longsweep.budget, "
        "longsweep.config, longsweep.engines.base, longsweep.engines.registry, longsweep.runtime.plan, "
        "longsweep.results, longsweep.store\n"
        "heavy = [m for m in ('vllm', 'llama_cpp', 'torch', 'transformers') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"heavy modules loaded by import: {out.stdout}"
