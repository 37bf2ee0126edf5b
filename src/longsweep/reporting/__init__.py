"""What users look at: the sweep folder as one self-contained HTML page (``longsweep report --html``) and
the same page served on this machine (``longsweep view``).

Modules: ``parts`` (escaping, tables, embedded images, the page's CSS and script), ``page`` (the whole page),
``reviews``, ``stories`` and ``runinfo`` (its sections), ``serve`` (the local viewer); the terminal and JSON
report ``tables`` (``longsweep report``), the judged folder's ``judge``, the PNG ``plots`` (headless matplotlib
in ``mpl``), and the exports ``export_seed`` (the review seed's JSON layout) and ``export_batch`` (OpenAI Batch
output lines). Every text that comes from a model, a paper or a file is escaped before it enters the page;
the page loads nothing from anywhere.
"""
