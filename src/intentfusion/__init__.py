"""intentfusion: multi-task utterance understanding on one shared transformer encoder."""

__version__ = "0.1.0"
