from ticketbot.cli import main

raise SystemExit(main())
