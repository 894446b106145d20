"""`python -m intentfusion.inference.export ckpt_path=... out=DIR [onnx=true] [quantize=true] ...`"""

from intentfusion.inference.export.bundle import main

if __name__ == "__main__":
    raise SystemExit(main())
