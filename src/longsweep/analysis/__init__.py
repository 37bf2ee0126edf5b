"""``longsweep compare``: paired base-vs-revised analysis of review sweeps.

Modules: ``tables`` (load reviews, average runs per paper and version), ``paired`` (paired tests,
effect sizes, Holm), ``agreement`` (ICC, Krippendorff's alpha), ``human`` (AI vs human scores),
``plots`` (PNG), ``render`` (text, JSON, CSV), ``command`` (the CLI subcommand). Importing this
package loads nothing heavy: scipy and matplotlib are imported inside the functions that use them.
"""

METRICS = ("soundness", "presentation", "contribution", "rating")
