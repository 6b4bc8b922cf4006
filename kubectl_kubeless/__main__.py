"""`python -m kubectl_kubeless ...` runs the plugin, as `kubectl kubeless ...` does."""
from kubectl_kubeless.cli import main

raise SystemExit(main())
