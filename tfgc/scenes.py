"""`python -m tfgc.scenes`: the command of tfgc.data.scenes (procedural street scenes with label maps)."""

import sys

from tfgc.data.scenes import main

if __name__ == "__main__":
    sys.exit(main())
