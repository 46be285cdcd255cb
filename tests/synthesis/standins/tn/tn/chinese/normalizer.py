"""Stand-in for WeTextProcessing's Chinese normaliser (see tn/__init__.py)."""


class Normalizer:
    def __init__(self, *args, **kwargs):
        self.kwargs = kwargs

    def normalize(self, text):
        raise AssertionError(f"upstream's zh text frontend was used on {text!r}; jaspeech passes text_frontend=False")
