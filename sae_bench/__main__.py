import sys

from sae_bench.cli import main

sys.exit(main())
