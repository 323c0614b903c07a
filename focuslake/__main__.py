from focuslake.cli import main

raise SystemExit(main())
