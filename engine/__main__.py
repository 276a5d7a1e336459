import sys

from .cli import main
from .redact import guard_streams

guard_streams()  # what this process prints (a dashboard run's log file too) never shows a secret
sys.exit(main())
