"""``python -m nncore train SPEC.json --out model.npz``; see nncore.cli."""

from nncore.cli import main

raise SystemExit(main())
