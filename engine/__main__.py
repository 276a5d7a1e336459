import sys

try:  # a Ctrl-C while the command line is still being imported ends it quietly, as one later does
    from .cli import main
    from .redact import guard_streams
except KeyboardInterrupt:
    print("error: interrupted", file=sys.stderr)
    sys.exit(130)

guard_streams()  # what this process prints (a dashboard run's log file too) never shows a secret
try:
    code = main()
except KeyboardInterrupt:  # before the command installs its own handling, or a second Ctrl-C during it
    print("error: interrupted", file=sys.stderr)
    code = 130
sys.exit(code)
