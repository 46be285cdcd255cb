"""jaspeech: build, document and publish the Japanese speech corpora behind JaSpeechLLM."""

__version__ = "0.1.0"
