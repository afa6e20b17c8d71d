"""`python -m lrlab` (also what `torchrun -m lrlab` runs)."""

from lrlab.cli import entry

if __name__ == "__main__":
    entry()
