"""``python -m corpuspipe.cli``: the console entry (the tests run the CLI this way)."""

from corpuspipe.cli import main

main()
