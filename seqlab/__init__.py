"""seqlab: sequence models that train, decode and evaluate on real data.

The package root imports nothing heavy: ``import seqlab`` stays cheap so the CLI starts fast.
Import the pieces you need from their modules (``seqlab.data``, ``seqlab.models``, ...).
"""

__version__ = "0.1.0"
