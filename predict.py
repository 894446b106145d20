"""Predict labels for many messages: `python predict.py model=EXPORT_DIR_OR_CKPT [input=FILE] [key=value ...]`.

    python predict.py model=exports/minilm input=messages.txt > predictions.jsonl
    python predict.py model=exports/minilm input=tickets.csv column=body id_column=ticket_id out=pred.jsonl

`python predict.py help` lists the options (the same as `intentfusion-predict`); the code is
`intentfusion.inference.predict_cli`.
"""

import sys

from intentfusion.inference.predict_cli import main

if __name__ == "__main__":
    sys.exit(main())
