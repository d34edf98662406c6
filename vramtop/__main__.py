"""python -m vramtop"""

import sys

try:
    from vramtop.entry import main
except KeyboardInterrupt:  # Ctrl-C before the entry could set anything up
    sys.exit(130)

sys.exit(main())
