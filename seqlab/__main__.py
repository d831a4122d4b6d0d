"""``python -m seqlab`` is the same as the ``seqlab`` console script."""

from seqlab.cli import main

raise SystemExit(main())
