import sys

from hushscribe.cli import main

sys.exit(main())
