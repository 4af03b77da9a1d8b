from rosenblatt.cli import main

raise SystemExit(main())
