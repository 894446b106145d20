"""intentfusion: multi-task utterance understanding on one shared transformer encoder."""

from intentfusion.config import register_resolvers

__version__ = "0.1.0"

register_resolvers()
