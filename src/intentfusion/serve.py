"""`python -m intentfusion.serve ...`: kept for existing command lines; the code is `intentfusion.inference.serve`
(the CLI) and `intentfusion.inference.app` (the FastAPI app); `python -m intentfusion.serve help` for the options."""

from intentfusion.inference.serve import main

if __name__ == "__main__":
    raise SystemExit(main())
