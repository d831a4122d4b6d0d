"""Evaluation metrics.

``seqlab.metrics.bleu``: corpus BLEU through sacreBLEU (with its signature), BLEU-1..4 of tokenized captions, and
d2l's sentence BLEU.  Modules are imported where used (``from seqlab.metrics.bleu import corpus_bleu``), so
importing the package does not pull in sacreBLEU.
"""
