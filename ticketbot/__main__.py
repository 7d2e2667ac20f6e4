from ticketbot.cli import main

# Guarded: a worker process (the large recap's renderer) imports this module again.
if __name__ == "__main__":
    raise SystemExit(main())
