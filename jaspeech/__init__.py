"""jaspeech: build, document and publish the Japanese speech corpora behind JaSpeechLLM."""

__version__ = "0.3.0"  # see CHANGELOG.md; the plan and the card record the version that built them
