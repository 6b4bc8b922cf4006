"""`python3 -m kubeless_depcache`: the dependency cache service, as the Deployment kubeless-deps-cache runs it."""
import sys

from kubeless_depcache.server import main

sys.exit(main())
