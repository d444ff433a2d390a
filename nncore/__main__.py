"""``python -m nncore train SPEC.json --out model.npz``; the commands live in nnq.local."""

from nnq.local import main

main()
