import sys

from deliverydags.cli.main import main

sys.exit(main())
