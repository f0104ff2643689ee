"""`python -m nncore.bench`: run the benchmark suite (see nncore.bench.run)."""
import sys

from nncore.bench.run import main

sys.exit(main())
