"""longsweep: long-context LLM sweeps on Ray.

The public surface is small on purpose; the CLI (``longsweep``) and ``jobs/`` call
the same functions. Importing this package loads no vllm, llama_cpp or torch.
"""

__version__ = "0.1.0"
