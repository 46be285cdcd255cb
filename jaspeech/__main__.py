from jaspeech.cli import main

raise SystemExit(main())
