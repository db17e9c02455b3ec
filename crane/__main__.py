"""``python -m crane``: Ctrl-C is taken over first, so that even one during start-up (the imports
below take a good part of a second on a busy machine) ends the command with 130, no traceback."""

from crane.cli import interrupt

interrupt.install()
try:
    from crane.cli.main import main
except KeyboardInterrupt:
    interrupt.leave(interrupt.INTERRUPTED)

main()
