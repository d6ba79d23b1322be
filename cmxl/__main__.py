from cmxl.cli import main

raise SystemExit(main())
