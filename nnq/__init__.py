"""nnq: the pieces the server and the CLI share."""
