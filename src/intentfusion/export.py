"""`python -m intentfusion.export ...`: kept for existing command lines; the code is `intentfusion.inference.export`
(`python -m intentfusion.inference.export help`, or `intentfusion-export help`)."""

from intentfusion.inference.export import main

if __name__ == "__main__":
    raise SystemExit(main())
