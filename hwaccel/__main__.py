from hwaccel.cli import main

raise SystemExit(main())
