"""``python -m faceaffect`` runs the command line, e.g. for ``torchrun -m faceaffect train CONFIG``."""

from faceaffect.cli import main

main()
